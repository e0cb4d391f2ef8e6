"""The toy world itself: countries with capitals, towns, and people with ages, homes, jobs, pets and friends.

Contracts:
- `make_world(seed, scale)` is deterministic: the same (seed, scale) gives the same entities in the same order.
- Every fact is one (subject, attribute) -> value triple, listed by `World.facts()`; the encyclopedia states them,
  stories stay consistent with them, and questions ask about them. `fact_value` is the single source of truth.
- Names are unique: people by full name ("Mia Stone"), towns and countries by name; no town shares a name with a
  country, so a question never has two right answers.
- Children (age < 16) have no job; every person has a home, an age, a pet with a name, a favourite colour and
  food, and a best friend (someone else, from the same town when possible).

The scale grows with the requested corpus size (see `WorldScale.for_size`), so a 1 GB corpus has thousands of
people rather than repeating the 1 MB world's sixty a thousand times.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from . import vocab
from .text import child_rng

CHILD_AGE_LIMIT = 16
AGES = range(5, 81)  # ages a person can have: 5..80
PERSON_ATTRIBUTES = ("age", "home", "job", "pet", "pet_name", "color", "food", "friend")
TOWN_ATTRIBUTES = ("country",)
COUNTRY_ATTRIBUTES = ("capital",)


@dataclass(frozen=True, slots=True)
class WorldScale:
    """How big the world is: more people and countries for bigger corpora, so facts are not repeated forever."""

    n_people: int
    n_countries: int

    def __post_init__(self) -> None:
        if self.n_people < 4 or self.n_countries < 2:
            raise ValueError(f"world too small: {self.n_people} people, {self.n_countries} countries (need 4 and 2)")
        max_people = (len(vocab.GIRL_NAMES) + len(vocab.BOY_NAMES)) * len(vocab.FAMILY_NAMES)
        if self.n_people > max_people:
            raise ValueError(f"n_people={self.n_people} exceeds the {max_people} unique names the word banks allow")
        if self.n_countries > len(vocab.COUNTRY_ROOTS) * len(vocab.COUNTRY_ENDINGS) // 2:
            raise ValueError(f"n_countries={self.n_countries} is more than the country-name banks can name")

    @classmethod
    def for_size(cls, size_bytes: int) -> WorldScale:
        """~60 people at 1 MB, ~1.3k at 50 MB, ~15k at 1 GB (people ~ size^0.8); countries ~ size^0.3."""
        mb = max(size_bytes / 1e6, 0.05)
        n_people = max(24, min(int(60 * mb**0.8), 30_000))
        n_countries = max(4, min(int(8 * mb**0.3), 120))
        return cls(n_people=n_people, n_countries=n_countries)


@dataclass(slots=True)
class Country:
    name: str
    capital: str = ""
    towns: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Town:
    name: str
    country: str
    is_capital: bool
    feature: str  # a landmark used in descriptions: "river", "hill", ...


@dataclass(frozen=True, slots=True)
class Person:
    name: str  # full name, unique: "Mia Stone"
    first: str
    gender: str  # "f" or "m": picks he/she in stories
    age: int
    home: str  # town name
    job: str | None  # None for children
    pet: str  # animal kind
    pet_name: str
    color: str
    food: str
    friend: str = ""  # full name of the best friend

    @property
    def is_child(self) -> bool:
        return self.age < CHILD_AGE_LIMIT

    @property
    def he(self) -> str:
        return "she" if self.gender == "f" else "he"

    @property
    def his(self) -> str:
        return "her" if self.gender == "f" else "his"

    @property
    def him(self) -> str:
        return "her" if self.gender == "f" else "him"

    @property
    def kind(self) -> str:
        """'girl', 'boy', 'woman' or 'man', by age and gender."""
        if self.is_child:
            return "girl" if self.gender == "f" else "boy"
        return "woman" if self.gender == "f" else "man"


@dataclass(slots=True)
class World:
    seed: int
    scale: WorldScale
    countries: list[Country]
    towns: list[Town]
    people: list[Person]
    by_name: dict[str, Person] = field(default_factory=dict)
    town_by_name: dict[str, Town] = field(default_factory=dict)
    country_by_name: dict[str, Country] = field(default_factory=dict)
    residents: dict[str, list[Person]] = field(default_factory=dict)
    _domains: dict[str, list[str]] = field(default_factory=dict)  # cache: domain() is asked per generated record

    def __post_init__(self) -> None:
        self.by_name = {p.name: p for p in self.people}
        self.town_by_name = {t.name: t for t in self.towns}
        self.country_by_name = {c.name: c for c in self.countries}
        self.residents = {t.name: [] for t in self.towns}
        for p in self.people:
            self.residents[p.home].append(p)
        assert len(self.by_name) == len(self.people), "person names must be unique"
        assert not set(self.town_by_name) & set(self.country_by_name), "town and country names must differ"

    def person_attributes(self, person: Person) -> tuple[str, ...]:
        return tuple(a for a in PERSON_ATTRIBUTES if not (a == "job" and person.job is None))

    def facts(self) -> list[tuple[str, str]]:
        """Every (subject, attribute) pair with a value, in a fixed order."""
        out = [(p.name, a) for p in self.people for a in self.person_attributes(p)]
        out += [(t.name, "country") for t in self.towns]
        out += [(c.name, "capital") for c in self.countries]
        return out

    def fact_value(self, subject: str, attribute: str) -> str:
        """The answer to (subject, attribute): e.g. ("Mia Stone", "home") -> "Oakford"."""
        if attribute in COUNTRY_ATTRIBUTES:
            return self.country_by_name[subject].capital
        if attribute in TOWN_ATTRIBUTES:
            return self.town_by_name[subject].country
        person = self.by_name[subject]
        value = getattr(person, attribute)
        if value is None:
            raise ValueError(f"{subject} has no {attribute}")
        return str(value)

    def domain(self, attribute: str) -> list[str]:
        """All distinct values the attribute can take: the candidates for chance level and plausible wrong answers."""
        if attribute not in self._domains:
            self._domains[attribute] = list(dict.fromkeys(self._domain(attribute)))
        return self._domains[attribute]

    def _domain(self, attribute: str) -> list[str]:
        if attribute == "age":
            return [str(a) for a in AGES]
        if attribute == "home" or attribute == "capital":
            return [t.name for t in self.towns] if attribute == "home" else [c.capital for c in self.countries]
        if attribute == "country":
            return [c.name for c in self.countries]
        if attribute == "friend":
            return [p.name for p in self.people]
        return list(
            {"job": vocab.JOBS, "pet": vocab.PET_ANIMALS, "pet_name": vocab.PET_NAMES, "color": vocab.COLORS,
             "food": vocab.FOODS}[attribute]
        )


def _unique_names(rng: random.Random, roots: tuple[str, ...], endings: tuple[str, ...], n: int,
                  taken: set[str]) -> list[str]:
    pool = [r + e for r in roots for e in endings if r + e not in taken]
    if n > len(pool):
        raise ValueError(f"asked for {n} names but only {len(pool)} can be made")
    return rng.sample(pool, n)


def make_world(seed: int, scale: WorldScale) -> World:
    """Build the world for `seed`: countries, their towns (the first one is the capital), and people."""
    rng = child_rng(seed, "world")
    country_names = _unique_names(rng, vocab.COUNTRY_ROOTS, vocab.COUNTRY_ENDINGS, scale.n_countries, set())
    # ~1 town per 1.5 people at small scale, ~40 people per town at large scale; 3..8 towns per country
    towns_per_country = max(3, min(8, scale.n_people // (scale.n_countries * 2) or 3))
    n_towns = towns_per_country * scale.n_countries
    town_names = _unique_names(rng, vocab.TOWN_PREFIXES, vocab.TOWN_SUFFIXES, n_towns, set(country_names))
    features = ("river", "hill", "lake", "forest", "harbour", "bridge", "market", "castle", "windmill", "meadow")

    countries: list[Country] = []
    towns: list[Town] = []
    for i, cname in enumerate(country_names):
        country = Country(name=cname)
        for j in range(towns_per_country):
            tname = town_names[i * towns_per_country + j]
            towns.append(Town(name=tname, country=cname, is_capital=(j == 0), feature=rng.choice(features)))
            country.towns.append(tname)
        country.capital = country.towns[0]
        countries.append(country)

    # unique (first, family) pairs drawn without replacement from the product of the banks
    firsts = [(n, "f") for n in vocab.GIRL_NAMES] + [(n, "m") for n in vocab.BOY_NAMES]
    n_pairs = len(firsts) * len(vocab.FAMILY_NAMES)
    picks = rng.sample(range(n_pairs), scale.n_people)
    people: list[Person] = []
    for k in picks:
        (first, gender), family = firsts[k // len(vocab.FAMILY_NAMES)], vocab.FAMILY_NAMES[k % len(vocab.FAMILY_NAMES)]
        age = rng.randint(5, 15) if rng.random() < 0.35 else rng.randint(18, 80)
        people.append(
            Person(
                name=f"{first} {family}", first=first, gender=gender, age=age, home=rng.choice(towns).name,
                job=None if age < CHILD_AGE_LIMIT else rng.choice(vocab.JOBS), pet=rng.choice(vocab.PET_ANIMALS),
                pet_name=rng.choice(vocab.PET_NAMES), color=rng.choice(vocab.COLORS), food=rng.choice(vocab.FOODS),
            )
        )
    # best friends: someone else from the same town when there is one, else anyone else
    by_town: dict[str, list[int]] = {}
    for i, p in enumerate(people):
        by_town.setdefault(p.home, []).append(i)
    with_friends = []
    for i, p in enumerate(people):
        neighbours = [j for j in by_town[p.home] if j != i]
        j = rng.choice(neighbours) if neighbours else rng.choice([j for j in range(len(people)) if j != i])
        with_friends.append(replace(p, friend=people[j].name))
    return World(seed=seed, scale=scale, countries=countries, towns=towns, people=with_friends)

