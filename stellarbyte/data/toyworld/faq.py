"""Question-and-answer pages in the pretraining text, about TRAINING facts only.

Why: a model that reads facts only as statements and learns the question form only in SFT extracts held-out facts
poorly; mixing some question/answer text about other people into pretraining teaches it to store facts in a form a
question can reach (Allen-Zhu & Li, "Physics of Language Models 3.1", 2023: "mixed training" of biographies and QA).

Contract: a (subject, attribute) pair that is held out (`heldout.is_heldout_fact`) never appears here, in any
phrasing, so the held-out questions stay unseen. A page is several lines "question answer." with no blank line.
"""

from __future__ import annotations

import random

from .heldout import is_heldout_fact
from .tasks import fact_question
from .world import Person, World


def faq_document(rng: random.Random, seed: int, world: World, person: Person | None = None) -> str:
    """A quiz page about one person (85%; `person` or a random one) or about a town and its country."""
    if rng.random() < 0.85:
        p = person or rng.choice(world.people)
        subject = p.name
        attributes = [a for a in world.person_attributes(p) if not is_heldout_fact(seed, p.name, a)]
        head = rng.choice((f"Questions about {p.name}.", f"A quiz about {p.name}.",
                           f"Questions and answers about {p.name}."))
    else:
        town = rng.choice(world.towns)
        subject = town.name
        attributes = [a for a in ("country",) if not is_heldout_fact(seed, town.name, a)]
        head = rng.choice((f"A quiz about {town.name}.", f"Questions about the town of {town.name}."))
        country = world.country_by_name[town.country]
        if not is_heldout_fact(seed, country.name, "capital"):
            attributes.append("capital")
    rng.shuffle(attributes)
    lines = [head]
    for a in attributes[: rng.randint(2, max(2, len(attributes)))]:
        who = world.town_by_name[subject].country if a == "capital" else subject
        pet = world.by_name[subject].pet if a == "pet_name" else ""
        variant = 0 if rng.random() < 0.7 else rng.randint(1, 2)
        lines.append(f"{fact_question(a, who, variant, pet=pet)} {world.fact_value(who, a)}.")
    return "\n".join(lines)
