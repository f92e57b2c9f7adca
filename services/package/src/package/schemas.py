"""Wire models of the package API (camelCase JSON).

Rules carried by the types:

- ``size``: ``Small | Medium | Large``, matched case-insensitively, answered canonically.
- ``weight``: a JSON number, ``0 < weight <= MAX_PACKAGE_WEIGHT`` (100); strings and booleans
  are refused rather than coerced.
- ``tag``: at most ``MAX_TAG_LENGTH`` (64) characters after trimming, or ``null``.
- package ids (path): 1..128 characters from ``A-Z a-z 0-9 . _ ~ -`` (RFC 3986 "unreserved", so an
  id never needs escaping in a URL), starting with a letter or a digit (so ``.`` and ``..`` are
  not ids). Server-made ids are lower-case UUIDs, which fit.
- owner ids: 1..128 characters, any text (trimmed in bodies).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import MISSING, Field, StringConstraints, model_validator

from dronecommon.domain import MAX_PACKAGE_WEIGHT, MAX_TAG_LENGTH, ApiModel, PackageSize

PACKAGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"
MAX_ID_LENGTH = 128

Weight = Annotated[
    float,
    Field(
        gt=0,
        le=MAX_PACKAGE_WEIGHT,
        allow_inf_nan=False,
        strict=True,
        description=f"0 < weight <= {MAX_PACKAGE_WEIGHT:g}",
        examples=[10],
    ),
]
Tag = Annotated[
    str,
    StringConstraints(max_length=MAX_TAG_LENGTH),
    Field(description=f"Free text, at most {MAX_TAG_LENGTH} characters", examples=["mytag"]),
]
OwnerId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH),
    Field(description="The owner the package counts for in summaries", examples=["myowner"]),
]


class PackageIn(ApiModel):
    """A whole package (``PUT``): size, weight and tag replace what is stored.

    ``ownerId`` is not part of the package's representation: when given it is recorded (and
    replaces a previous owner); when absent the stored owner is kept.
    """

    size: PackageSize
    weight: Weight
    tag: Tag | None = None
    owner_id: OwnerId | None = None


class PackagePatch(ApiModel):
    """A partial update (``PATCH``): only the fields sent change; ``tag: null`` clears the tag."""

    size: PackageSize | MISSING = MISSING
    weight: Weight | MISSING = MISSING
    tag: Tag | MISSING | None = MISSING

    @model_validator(mode="after")
    def _not_empty(self) -> PackagePatch:
        if not self.model_fields_set & {"size", "weight", "tag"}:
            raise ValueError("give at least one of size, weight, tag")
        return self


class PackageOut(ApiModel):
    """A stored package as answered."""

    id: str = Field(examples=["mypackage"])
    size: PackageSize
    weight: float = Field(examples=[10])
    tag: str | None = Field(examples=["mytag"])


class PackageSummary(ApiModel):
    """The summed weight of an owner's packages created in one UTC month."""

    total_weight: float = Field(ge=0, examples=[42.5])
