"""The release's software bill of materials: CycloneDX 1.6 JSON of the model and every installed package."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from credit_scorer.documents.annex_iv import SYSTEM_NAME, canonical_name
from credit_scorer.documents.inputs import AnnexIvInputs

SBOM_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:credit-scorer:sbom")
"""uuid5 namespace of SBOM serial numbers; the name is the model sha256."""


def sbom(inputs: AnnexIvInputs) -> bytes:
    """CycloneDX 1.6 JSON of the installed packages; serial number and timestamp fixed by the inputs."""
    try:
        timestamp = datetime.fromisoformat(inputs.generated_at)
    except ValueError as exc:
        raise ValueError(f"generated_at {inputs.generated_at!r} is not an ISO 8601 date-time") from exc
    root = Component(
        name="credit-scorer",
        version=inputs.release_id,
        type=ComponentType.APPLICATION,
        bom_ref=f"credit-scorer@{inputs.release_id}",
        description=SYSTEM_NAME,
        properties=[
            Property(name="credit-scorer:model_sha256", value=inputs.model_sha256),
            Property(name="credit-scorer:run_id", value=inputs.run_id),
            Property(name="credit-scorer:python", value=inputs.python_version),
            Property(name="credit-scorer:platform", value=inputs.platform),
        ],
    )
    libraries = []
    for name, version in sorted(inputs.packages.items(), key=lambda item: canonical_name(item[0])):
        purl = PackageURL(type="pypi", name=canonical_name(name), version=version)
        libraries.append(
            Component(name=name, version=version, type=ComponentType.LIBRARY, purl=purl, bom_ref=purl.to_string())
        )
    bom = Bom(
        serial_number=uuid.uuid5(SBOM_NAMESPACE, inputs.model_sha256),
        metadata=BomMetaData(component=root, timestamp=timestamp),
        components=libraries,
    )
    bom.register_dependency(root, libraries)
    return JsonV1Dot6(bom).output_as_string(indent=2).encode("utf-8")
