"""TinyStories-like short stories about the world's people, their pets, towns and things.

How a story is composed (sentence level, so stories vary): an opening, one or two setup details, one plot chosen from
many (a lost toy, a hurt animal, sharing, a fear, a trip, baking, rain, learning a skill, a runaway pet, a working day),
each plot beat picking one of several templates, random interjections (a sound, a line of dialogue, a description),
and an ending with a moral. Slots are filled from the world (the hero's real home, age, pet, friend and job, so
stories never contradict the encyclopedia) and from the word banks; slots named r_* draw a fresh random word at
every use.

Reference for the genre: Eldan & Li, "TinyStories: How Small Can Language Models Be and Still Speak Coherent
English?" (2023). The templates are ours.

Contract: a story is one line (no newline, no blank line) and contains no question about a person's facts.
"""

from __future__ import annotations

import random

from . import vocab
from .text import article, capitalize
from .world import Person, World

OPENINGS = (
    "Once upon a time, in the town of {home}, there lived {a_cadj} {kind} named {n}.",
    "There was once {a_cadj} {kind} called {n} who lived in {home}.",
    "{n} was {age} years old and lived in {home} with {his} {pet}, {pet_name}.",
    "In {home}, near the {feature}, lived {a_cadj} {kind} named {n}.",
    "One {weather} {time}, {n} woke up early and looked out of the window.",
    "{n} lived in a {r_place_adj} little house in {home}.",
    "Long ago, in {home}, there was {a_cadj} {kind}. {His} name was {n}.",
    "Every day in {home} started the same way for {n}: with a big hug from {pet_name} the {pet}.",
)
SETUP = (
    "{He} had {a_tadj} {color} {toy} that {he} loved very much.",
    "{His} best friend was {friend}.",
    "{n} loved {food} more than anything.",
    "Every day, {he} liked to {act} in the {place}.",
    "{His} {pet}, {pet_name}, followed {him} everywhere.",
    "{n} was {age}, and {he} was very {cadj}.",
    "{His} favorite color was {color}, so {he} wore {color} almost every day.",
    "{n} and {friend} often played together near the {feature}.",
)
CHILD_PLOTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "lost": (
        ("One day, {n} took {his} {toy} to the {place}.", "{n} carried {his} {toy} all the way to the {place}."),
        ("While {he} was {acting}, the {toy} was gone!", "When {he} looked down, {his} {toy} was not there."),
        ("{n} looked under the {r_plural} and behind the {r_plural}.", "{He} searched everywhere, but it was gone."),
        ("{He} felt very {r_sad}.", "Tears came to {his} eyes.", "\"Where is my {toy}?\" {he} cried."),
        ("Then {pet_name} barked and ran to a big {r_tadj} box.", "Then {friend} came and said, \"I will help you.\""),
        ("The {toy} was there, safe and {r_tadj}!", "Together they found the {toy} next to a {r_tadj} rock."),
    ),
    "help": (
        ("On the way to the {place}, {n} saw a little {animal}.", "At the {place}, {n} found a tiny {animal}."),
        ("The {animal} was stuck and could not move.", "The {animal} looked {r_sad} and cold."),
        ("{n} said, \"Do not be scared. I will help you.\"", "{n} knelt down and spoke softly to the {animal}."),
        ("{He} gently {r_action_past} a {r_tadj} stick and freed it.", "{He} gave it some {food} and a warm blanket."),
        ("The {animal} was happy and {r_moved} away.", "The {animal} looked at {n} as if to say thank you."),
    ),
    "share": (
        ("{friend} came to play with {n}.", "One {time}, {friend} visited {n} in {home}."),
        ("{friend} wanted to play with the {toy}.", "{friend} saw the {tadj} {toy} and smiled."),
        ("At first, {n} did not want to share.", "{n} held the {toy} tight and said, \"It is mine!\""),
        ("Then {he} saw that {friend} was {r_sad}.", "{friend} looked down at {fhis} shoes."),
        ("{n} said, \"We can play with it together.\"", "{n} gave the {toy} to {friend} with a smile."),
        ("They played all {time} and laughed a lot.", "Soon they were both {r_happy} and busy."),
    ),
    "fear": (
        ("{n} was scared of {fear}.", "There was one thing {n} did not like: {fear}."),
        ("One {weather} night, {he} could not sleep.", "When it got dark, {he} hid under {his} blanket."),
        ("{pet_name} the {pet} came and sat next to {him}.", "{friend} said, \"It is okay to be scared.\""),
        ("{n} took a deep breath.", "{He} counted to ten and felt a little better."),
        ("Soon {he} was not scared anymore.", "{He} felt brave and {r_happy}."),
    ),
    "trip": (
        ("{n} and {friend} went to the {place}.", "One {weather} {time}, {n} and {friend} walked to the {place}."),
        ("The {place} was {r_place_adj} and full of {r_plural}.", "They saw {r_plural} and {r_plural}."),
        ("Suddenly, they heard {sound}.", "\"Look!\" said {friend}, pointing at a {r_tadj} {r_toy}."),
        ("They decided to {act} together.", "{n} wanted to {act}, and {friend} agreed."),
        ("They stayed until the sky turned {r_color}.", "When it was time to go home, they were tired but happy."),
    ),
    "bake": (
        ("{n} wanted to make {bake} for {friend}.", "{n} had an idea: {he} would bake {bake} for everyone."),
        ("{He} got a big bowl, a spoon and a {r_tadj} cup.", "{He} asked {pet_name} to watch."),
        ("Oops! {He} dropped the bowl and made a mess.", "The kitchen was very {r_tadj} and sticky."),
        ("{n} did not give up.", "{He} cleaned up and tried again, slowly and carefully."),
        ("This time the {bake} came out just right.", "Soon the house smelled wonderful."),
        ("{friend} said it was the best {bake} ever.", "They shared the {bake} and smiled."),
    ),
    "rain": (
        ("{n} wanted to {act} outside.", "{n} put on {his} {color} boots and went to the {place}."),
        ("But then dark clouds came and it started to rain.", "Suddenly, big drops of rain began to fall."),
        ("{n} felt {r_sad}.", "\"Now I cannot play,\" said {n}."),
        ("Then {he} saw the puddles and had an idea.", "{friend} knocked on the door with an umbrella."),
        ("{He} jumped in the puddles and laughed.", "They played games inside and drew {r_plural}."),
        ("The rain was fun after all.", "When the sun came back, there was a rainbow."),
    ),
    "learn": (
        ("{n} wanted to learn to {act}.", "{n} saw {friend} {act} and wanted to try too."),
        ("The first time, {he} fell down.", "At first it was very hard."),
        ("{n} felt {r_sad} and wanted to stop.", "\"I can not do it,\" {n} said."),
        ("{friend} said, \"Try again. You can do it!\"", "{His} {pet} {pet_name} watched and wagged its tail."),
        ("{n} tried again and again.", "Every day {he} practised a little more."),
        ("At last, {he} could {act} very well!", "One {time}, it was easy, and {he} was proud."),
    ),
    "pet": (
        ("One {time}, {pet_name} the {pet} ran out of the garden.", "{pet_name} was missing!"),
        ("{n} called, \"{pet_name}! Where are you?\"", "{n} looked near the {feature} and in the {place}."),
        ("{He} asked {friend} to help {him} look.", "{friend} brought a {r_tadj} {r_toy} to help."),
        ("Then they heard {sound}.", "They saw a small shape behind a {r_tadj} fence."),
        ("It was {pet_name}, playing with a {r_toy}!", "{pet_name} had found some {r_plural}."),
        ("{n} gave {pet_name} a big hug.", "{n} took {pet_name} home and gave it some water."),
    ),
}
ADULT_PLOTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "work": (
        ("{n} was {a_job} in {home}.", "{n} worked as {a_job}, and {he} loved {his} work."),
        ("Every morning, {he} walked past the {feature} on {his} way to work.",
         "{He} always started the day with {food}."),
        ("One {weather} day, there was a problem.", "One day, a {r_tadj} {r_toy} went missing at work."),
        ("{n} stayed calm and thought hard.", "{n} asked {friend} for help."),
        ("Together they fixed the problem.", "In the end, everything was fine again."),
        ("That evening, {n} told {pet_name} the {pet} all about it.", "{n} went home tired but proud."),
    ),
    "garden": (
        ("{n} had a small garden behind {his} house in {home}.", "{n} wanted to grow {crop} in {his} garden."),
        ("{He} planted seeds and watered them every day.", "{His} {pet} {pet_name} liked to dig near the seeds."),
        ("For a long time, nothing happened.", "Then a {r_animal} came and ate some leaves."),
        ("{n} was patient.", "{n} did not give up and built a {r_tadj} fence."),
        ("At last, the plants grew tall and strong.", "Soon there were {crop} for everyone."),
        ("{He} shared it with {friend} and the neighbours.", "{friend} said thank you with a big smile."),
    ),
}
ADULT_PLOTS.update({k: v for k, v in CHILD_PLOTS.items() if k in ("help", "bake", "trip", "pet", "rain")})
INTERJECTIONS = (
    "The sun was {r_weather_adj} and the birds were singing.",
    "Suddenly, they heard {sound}.",
    "\"What a {r_place_adj} day!\" said {n}.",
    "The wind moved the {r_plural} softly.",
    "{pet_name} wagged its tail.",
    "{n} smiled.",
    "It was very {r_place_adj} there.",
    "A {r_animal} watched them from far away.",
)
ENDINGS = (
    "From that day on, {n} always remembered that {moral}.",
    "{n} learned that {moral}.",
    "It was the best day ever.",
    "That night, {n} went to bed with a big smile.",
    "And they all lived happily in {home}.",
    "{n} hugged {pet_name} and felt {r_happy}.",
    "The end.",
)
MORALS = (
    "sharing makes everyone happy", "it is good to help others", "being brave is not the same as never being scared",
    "friends make everything better", "practice makes hard things easy", "it is important to say sorry",
    "being careful is smart", "kind words can fix a bad day", "it is okay to ask for help",
    "patience brings good things", "every mistake is a chance to learn", "a little kindness goes a long way",
)
FEARS = ("the dark", "thunder", "big dogs", "the deep water", "loud noises", "the old attic", "spiders",
         "the tall slide", "the first day of school", "the wind at night")
MOVES = ("hopped", "flew", "ran", "crawled", "swam", "waddled", "scurried", "trotted")
BAKES = ("cookies", "cake", "pie", "bread", "muffins", "pancakes", "biscuits", "waffles", "pizza", "buns")
CROPS = ("carrots", "peas", "potatoes", "tomatoes", "pumpkins", "strawberries", "beans", "apples", "pears", "plums",
         "cherries", "melons", "lemons", "blueberries")
HAPPY = ("happy", "glad", "cheerful", "joyful", "proud", "excited", "thankful")
SAD = ("sad", "upset", "worried", "lonely", "grumpy", "nervous", "scared")


class _Slots(dict):
    """Story slots; keys starting with r_ draw a fresh random word at each use."""

    def __init__(self, rng: random.Random, base: dict[str, str]) -> None:
        super().__init__(base)
        self.rng = rng

    def __missing__(self, key: str) -> str:
        r = self.rng
        fresh = {
            "r_plural": lambda: r.choice(vocab.PLURAL_THINGS), "r_tadj": lambda: r.choice(vocab.THING_ADJECTIVES),
            "r_place_adj": lambda: r.choice(vocab.PLACE_ADJECTIVES), "r_toy": lambda: r.choice(vocab.TOYS),
            "r_animal": lambda: r.choice(vocab.WILD_ANIMALS), "r_color": lambda: r.choice(vocab.COLORS),
            "r_action_past": lambda: r.choice(vocab.ACTIONS)[1], "r_moved": lambda: r.choice(MOVES),
            "r_happy": lambda: r.choice(HAPPY), "r_sad": lambda: r.choice(SAD),
            "r_weather_adj": lambda: r.choice(("warm", "bright", "soft", "golden", "gentle")),
        }
        if key not in fresh:
            raise KeyError(f"story template uses unknown slot {{{key}}}")
        return fresh[key]()


def _base_slots(rng: random.Random, world: World, p: Person) -> dict[str, str]:
    friend = world.by_name[p.friend]
    cadj, tadj = rng.choice(vocab.CHARACTER_ADJECTIVES), rng.choice(vocab.THING_ADJECTIVES)
    act = rng.choice(vocab.ACTIVITIES)
    slots = {
        "n": p.first, "kind": p.kind, "age": str(p.age), "home": p.home, "pet": p.pet, "pet_name": p.pet_name,
        "friend": friend.first, "fhis": friend.his, "food": p.food, "color": p.color, "job": p.job or "",
        "a_job": article(p.job or ""),
        "cadj": cadj, "a_cadj": article(cadj), "tadj": tadj, "a_tadj": article(tadj), "toy": rng.choice(vocab.TOYS),
        "place": rng.choice(vocab.PLACES), "act": act[0], "acting": act[2], "weather": rng.choice(vocab.WEATHER),
        "time": rng.choice(vocab.TIMES), "sound": rng.choice(vocab.SOUNDS), "animal": rng.choice(vocab.WILD_ANIMALS),
        "feature": world.town_by_name[p.home].feature, "fear": rng.choice(FEARS), "moral": rng.choice(MORALS),
        "bake": rng.choice(BAKES), "crop": rng.choice(CROPS),
        "he": p.he, "his": p.his, "him": p.him, "He": capitalize(p.he), "His": capitalize(p.his),
    }
    return slots


def story_document(rng: random.Random, world: World, hero: Person | None = None) -> str:
    """One story about `hero` (default: a random person of the world), as a single line."""
    p = hero or rng.choice(world.people)
    slots = _Slots(rng, _base_slots(rng, world, p))
    plots = CHILD_PLOTS if p.is_child else ADULT_PLOTS
    plot = plots[rng.choice(sorted(plots))]
    sentences = [rng.choice(OPENINGS)]
    sentences += rng.sample(SETUP, rng.randint(1, 2))
    for beat in plot:
        if rng.random() < 0.9:  # a beat is occasionally skipped, which varies the rhythm
            sentences.append(rng.choice(beat))
        if rng.random() < 0.12:
            sentences.append(rng.choice(INTERJECTIONS))
    sentences.append(rng.choice(ENDINGS))
    return " ".join(capitalize(s.format_map(slots)) for s in sentences)
