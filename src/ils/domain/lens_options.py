"""Lens options as codes: lens types (materials), coatings and tints.

A lab matches an order against its own treatments by code: free text ("AR",
"anti-reflection", "Anti-Reflective") made the lab ticket miss the coating on every
demo order. The API accepts only these codes (422 listing them otherwise); documents
print the human label of :func:`label`. ``other`` is the documented fallback: rows
from before the codes that no known spelling matched were migrated to it with their
original text kept in ``orders.lens_options_original`` (revision 0014), and a practice
ordering something not listed uses it and describes it in the order's notes.
"""

from __future__ import annotations

from enum import StrEnum


class LensType(StrEnum):
    """The lens material (``orders.lens_material``); the index is a separate field."""

    CR39 = "cr39"
    POLYCARBONATE = "polycarbonate"
    TRIVEX = "trivex"
    MID_INDEX = "mid_index"
    HIGH_INDEX = "high_index"
    GLASS = "glass"
    OTHER = "other"


class Coating(StrEnum):
    """A surface treatment (``orders.coatings``, a JSON list of these codes)."""

    ANTI_REFLECTIVE = "anti_reflective"
    HARD_COAT = "hard_coat"
    BLUE_LIGHT = "blue_light"
    UV400 = "uv400"
    HYDROPHOBIC = "hydrophobic"
    ANTI_FOG = "anti_fog"
    MIRROR = "mirror"
    OTHER = "other"


class Tint(StrEnum):
    """A tint or light-reactive option (``orders.tint``); absent for clear lenses."""

    GREY_20 = "grey_20"
    GREY_50 = "grey_50"
    GREY_85 = "grey_85"
    BROWN_20 = "brown_20"
    BROWN_50 = "brown_50"
    BROWN_85 = "brown_85"
    GREEN_85 = "green_85"
    GRADIENT_GREY = "gradient_grey"
    GRADIENT_BROWN = "gradient_brown"
    PHOTOCHROMIC_GREY = "photochromic_grey"
    PHOTOCHROMIC_BROWN = "photochromic_brown"
    POLARISED_GREY = "polarised_grey"
    POLARISED_BROWN = "polarised_brown"
    OTHER = "other"


def _labels() -> dict[str, str]:
    """Document labels per code; built on call so the module holds no mutable global."""
    return {
        LensType.CR39: "CR-39",
        LensType.POLYCARBONATE: "Polycarbonate",
        LensType.TRIVEX: "Trivex",
        LensType.MID_INDEX: "Mid-index plastic",
        LensType.HIGH_INDEX: "High-index plastic",
        LensType.GLASS: "Glass",
        Coating.ANTI_REFLECTIVE: "Anti-reflective",
        Coating.HARD_COAT: "Hard coat",
        Coating.BLUE_LIGHT: "Blue-light filter",
        Coating.UV400: "UV400 protection",
        Coating.HYDROPHOBIC: "Hydrophobic top coat",
        Coating.ANTI_FOG: "Anti-fog",
        Coating.MIRROR: "Mirror coating",
        Tint.GREY_20: "Grey 20 %",
        Tint.GREY_50: "Grey 50 %",
        Tint.GREY_85: "Grey 85 % (sun)",
        Tint.BROWN_20: "Brown 20 %",
        Tint.BROWN_50: "Brown 50 %",
        Tint.BROWN_85: "Brown 85 % (sun)",
        Tint.GREEN_85: "Green 85 % (sun)",
        Tint.GRADIENT_GREY: "Grey gradient",
        Tint.GRADIENT_BROWN: "Brown gradient",
        Tint.PHOTOCHROMIC_GREY: "Photochromic grey",
        Tint.PHOTOCHROMIC_BROWN: "Photochromic brown",
        Tint.POLARISED_GREY: "Polarised grey",
        Tint.POLARISED_BROWN: "Polarised brown",
    }


def label(code: str) -> str:
    """The document label of a lens type, coating or tint code.

    ``other`` and a code a newer release added read as "Other (...)" / the code in
    words rather than failing a document: the label is for people, the code for
    matching.
    """
    if code == "other":
        return "Other (see notes)"
    return _labels().get(code, code.replace("_", " ").capitalize())


def allowed(enum: type[StrEnum]) -> str:
    """The codes of ``enum`` as a 422 message lists them."""
    return ", ".join(member.value for member in enum)
