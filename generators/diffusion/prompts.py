"""Built-in prompt templates: profile headshots like those of fake sales accounts.

A template is a sentence with ``{fields}``; each field is drawn from a fixed list with
``rng_for(seed, "diffusion:prompt")``, so a seed always gets the same prompt, whatever
else shares its batch. The roles are the job titles such accounts give themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .loading import DiffusionError
from ...harness.contracts.seeding import rng_for

#: Job titles seen on fake sales and business-development profiles.
ROLES = (
    "Business Development Manager",
    "Business Development Representative",
    "Sales Development Executive",
    "Sales Development Representative",
    "Growth Manager",
    "Head of Growth",
    "Demand Creation Specialist",
    "Demand Generation Manager",
    "Account Executive",
    "Senior Account Executive",
    "Customer Success Manager",
    "Partnerships Manager",
    "Lead Generation Specialist",
    "Regional Sales Manager",
    "Marketing Specialist",
)
#: (age in years) drawn uniformly from this range, both ends included.
AGE_RANGE = (22, 62)
GENDERS = ("woman", "man", "androgynous person")
ETHNICITIES = (
    "East Asian", "South Asian", "Southeast Asian", "Black", "White", "Hispanic", "Middle Eastern",
    "mixed-race",
)
LIGHTING = (
    "soft window light", "studio softbox lighting", "natural daylight", "warm golden-hour light",
    "even office lighting", "soft rim lighting",
)
ATTIRE = (
    "a navy suit and white shirt", "a blazer over a plain t-shirt", "a smart-casual button-down shirt",
    "a knit sweater", "a company polo shirt", "a silk blouse", "a charcoal suit without a tie",
)
BACKGROUNDS = (
    "a blurred modern office", "a plain light-grey studio backdrop", "a city skyline through a window",
    "a white wall", "a blurred bookshelf", "blurred outdoor greenery", "a bright co-working space",
)

_FIELDS = {
    "role": ROLES, "gender": GENDERS, "ethnicity": ETHNICITIES, "lighting": LIGHTING, "attire": ATTIRE,
    "background": BACKGROUNDS,
}


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt with ``{age}``, ``{gender}``, ``{ethnicity}``, ``{role}``, ``{attire}``, ``{lighting}``,
    ``{background}`` fields, and the negative prompt used unless one is given."""

    name: str
    text: str
    negative: str
    description: str

    def fill(self, seed: int) -> tuple[str, dict[str, Any]]:
        """The prompt for ``seed`` and the field values drawn for it."""
        fields = draw_fields(seed)
        return self.text.format(**fields), fields


_NEGATIVE = (
    "cartoon, illustration, painting, drawing, 3d render, deformed face, extra fingers, blurry, "
    "watermark, text, logo, frame"
)

TEMPLATES: dict[str, PromptTemplate] = {
    t.name: t
    for t in (
        PromptTemplate(
            "headshot",
            "professional profile headshot photo of a {age}-year-old {ethnicity} {gender}, a {role}, "
            "wearing {attire}, {lighting}, {background} behind, looking at the camera, sharp focus",
            _NEGATIVE,
            "corporate headshot, head and shoulders, as on a business-network profile",
        ),
        PromptTemplate(
            "linkedin",
            "LinkedIn profile picture of a smiling {age}-year-old {ethnicity} {gender} who works as a {role}, "
            "{attire}, {lighting}, {background}, friendly and confident, photo",
            _NEGATIVE,
            "friendlier profile picture, smiling, slightly less formal",
        ),
        PromptTemplate(
            "casual",
            "candid photo of a {age}-year-old {ethnicity} {gender}, {role} at a software company, "
            "wearing {attire}, {lighting}, {background}, shot on a phone camera",
            _NEGATIVE,
            "casual phone-camera portrait, as on a less polished profile",
        ),
    )
}
DEFAULT_TEMPLATE = "headshot"


def draw_fields(seed: int) -> dict[str, Any]:
    """The template fields for ``seed``: the same seed always draws the same values."""
    rng = rng_for(int(seed), "diffusion:prompt")
    fields: dict[str, Any] = {"age": int(rng.integers(AGE_RANGE[0], AGE_RANGE[1] + 1))}
    for name, choices in _FIELDS.items():  # fixed order: each draw depends on the ones before
        fields[name] = choices[int(rng.integers(len(choices)))]
    return fields


def get_template(name: str) -> PromptTemplate:
    """The built-in template ``name``; an unknown name gets an error listing the known ones."""
    if name not in TEMPLATES:
        raise DiffusionError(f"unknown prompt template {name!r}; built-in templates: {', '.join(TEMPLATES)}")
    return TEMPLATES[name]
