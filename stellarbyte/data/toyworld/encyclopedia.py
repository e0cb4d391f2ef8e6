"""Encyclopedia-style passages that state the world's facts: people, towns, countries and capitals.

Contracts:
- Every sentence is true of the world (`World.fact_value`); nothing here is a question, so a held-out question
  string cannot appear in an encyclopedia passage.
- Each fact has several phrasings and passages shuffle their sentences, because a fact seen in many forms is one a
  model can later retrieve with a question it never saw in training (Allen-Zhu & Li, "Physics of Language Models
  3.1: Knowledge Storage and Extraction", 2023: knowledge augmentation makes facts extractable).
- A passage is one line: no blank line, no newline.
"""

from __future__ import annotations

import random

from . import vocab
from .text import article, capitalize, join_and, plural
from .world import Person, World

# {N}: subject (name or pronoun), {NP}: possessive ("Mia Stone's" or "her"), {name}: always the full name
PERSON_TEMPLATES: dict[str, tuple[str, ...]] = {
    "age": ("{N} is {age} years old.", "{NP} age is {age}.", "{N} is {age}.", "{N} is now {age} years old."),
    "home": ("{N} lives in {home}.", "{NP} home is in {home}.", "{N} lives in the town of {home}, in {country}.",
             "{N} has a house in {home}.", "{name} lives in {home}."),
    "job": ("{N} works as {a_job}.", "{N} is {a_job}.", "{NP} job is being {a_job}.", "By trade, {n} is {a_job}.",
            "{N} works as {a_job} in {home}."),
    "pet": ("{N} has {a_pet}.", "{N} has a pet {pet}.", "{NP} pet is {a_pet}.", "{N} keeps {a_pet} at home."),
    "pet_name": ("{NP} {pet} is called {pet_name}.", "{N} has {a_pet} named {pet_name}.",
                 "The {pet} of {name} is named {pet_name}.", "{NP} {pet} is named {pet_name}."),
    "color": ("{NP} favorite color is {color}.", "{N} likes {color} best.", "{N} loves the color {color}.",
              "Of all colors, {n} likes {color} the most."),
    "food": ("{NP} favorite food is {food}.", "{N} loves to eat {food}.",
             "{N} likes {food} more than any other food.", "The food {n} likes best is {food}."),
    "friend": ("{NP} best friend is {friend}.", "The best friend of {name} is {friend}.",
               "{N} calls {friend} {his} best friend."),
}
OPENINGS = (
    "{name} is {a_adj} {kind} from {home}.",
    "{name} is {a_adj} {kind} who lives in {home}.",
    "This page is about {name}.",
    "{name} is one of the people of {home}.",
    "{name} is {a_adj} {kind}.",
)
HOBBY_LINES = (
    "In {his} free time, {n} likes to {activity}.",
    "On weekends {n} often goes to the {place}.",
    "{N} is known as {a_adj} person.",
    "People say that {n} is very {adj}.",
    "{N} often visits the {place} with {his} {pet}.",
)


def _slots(world: World, p: Person, rng: random.Random) -> dict[str, str]:
    adj = rng.choice(vocab.CHARACTER_ADJECTIVES)
    return {
        "name": p.name, "n": p.first, "he": p.he, "his": p.his, "kind": p.kind, "age": str(p.age), "home": p.home,
        "country": world.town_by_name[p.home].country, "job": p.job or "", "a_job": article(p.job or ""),
        "pet": p.pet, "a_pet": article(p.pet), "pet_name": p.pet_name, "color": p.color, "food": p.food,
        "friend": p.friend, "adj": adj, "a_adj": article(adj), "activity": rng.choice(vocab.ACTIVITIES)[0],
        "place": rng.choice(vocab.PLACES),
    }


def person_passage(rng: random.Random, world: World, p: Person) -> str:
    """A short biography: an opening, then every fact in shuffled order and random phrasing, sometimes a hobby line
    (all facts every time, permuted: the 'multi + permute' augmentation that makes facts extractable)."""
    slots = _slots(world, p, rng)
    sentences = [rng.choice(OPENINGS).format(**slots)]
    attributes = list(world.person_attributes(p))
    rng.shuffle(attributes)
    for attribute in attributes:
        use_pronoun = rng.random() < 0.15  # full names help small models link facts
        who = {"N": capitalize(p.he) if use_pronoun else p.name, "NP": capitalize(p.his) if use_pronoun else
               f"{p.name}'s"}
        sentences.append(capitalize(rng.choice(PERSON_TEMPLATES[attribute]).format(**who, **slots)))
    if rng.random() < 0.5:
        sentences.append(capitalize(rng.choice(HOBBY_LINES).format(N=p.first, **slots)))
    return " ".join(sentences)


def town_passage(rng: random.Random, world: World, town_name: str) -> str:
    town = world.town_by_name[town_name]
    adj = rng.choice(vocab.PLACE_ADJECTIVES)
    sentences = [rng.choice((f"{town.name} is {article(adj)} town in {town.country}.",
                             f"{town.name} is a town in the country of {town.country}.",
                             f"The town of {town.name} lies in {town.country}."))]
    if town.is_capital:
        sentences.append(rng.choice((f"{town.name} is the capital of {town.country}.",
                                     f"It is the capital city of {town.country}.")))
    sentences.append(rng.choice((f"It is known for its {town.feature}.", f"There is a {town.feature} near the town.",
                                 f"Visitors like the old {town.feature} of {town.name}.")))
    people = world.residents[town.name]
    if people:
        picks = rng.sample(people, min(len(people), rng.randint(1, 4)))
        names = join_and([q.name for q in picks])
        sentences.append(rng.choice((f"People who live in {town.name} include {names}.",
                                     f"{names} {'lives' if len(picks) == 1 else 'live'} in {town.name}.")))
    places = rng.sample(vocab.PLACES, 2)
    sentences.append(f"The town has {article(places[0])} and {article(places[1])}.")
    return " ".join(sentences)


def country_passage(rng: random.Random, world: World, country_name: str) -> str:
    country = world.country_by_name[country_name]
    others = [t for t in country.towns if t != country.capital]
    shown = rng.sample(others, min(len(others), 3))
    things = rng.choice(vocab.PLURAL_THINGS)
    sentences = [
        rng.choice((f"{country.name} is a country.", f"{country.name} is a small country.",
                    f"{country.name} is a country with many {things}.")),
        rng.choice((f"The capital of {country.name} is {country.capital}.",
                    f"Its capital is {country.capital}.", f"{country.capital} is the capital of {country.name}.")),
    ]
    if shown:
        sentences.append(f"Other towns in {country.name} are {join_and(shown)}.")
    sentences.append(rng.choice((f"The people of {country.name} like {plural(rng.choice(vocab.TOYS))}.",
                                 f"Many {plural(rng.choice(vocab.WILD_ANIMALS))} live in {country.name}.",
                                 f"In {country.name} the weather is often {rng.choice(vocab.WEATHER)}.")))
    return " ".join(sentences)


def encyclopedia_document(rng: random.Random, world: World, person: Person | None = None, town: str | None = None,
                          country: str | None = None) -> str:
    """One passage: a person (75%), a town (15%) or a country (10%); pass the subjects to control coverage."""
    r = rng.random()
    if r < 0.75:
        return person_passage(rng, world, person or rng.choice(world.people))
    if r < 0.9:
        return town_passage(rng, world, town or rng.choice(world.towns).name)
    return country_passage(rng, world, country or rng.choice(world.countries).name)
