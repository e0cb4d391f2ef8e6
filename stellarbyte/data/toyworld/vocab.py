"""Word banks of the toy world: names, places, things, actions and describing words in simple English.

Contract: every bank is a tuple of unique, lower-case words or short phrases (names capitalised), written by hand
for this project. The generators only ever draw words from here, so the vocabulary of the whole corpus is bounded
and readable. Sizes (hundreds of names, objects, verbs and adjectives) are pinned by tests/toyworld/test_vocab.py,
because a TinyStories-like corpus needs a real vocabulary, not a handful of repeated sentences.

Entries are plain data; helpers that inflect or join words live in text.py.
"""

# ruff: noqa: SIM905 -- word banks read best as whitespace-separated strings
from __future__ import annotations

GIRL_NAMES: tuple[str, ...] = tuple(
    """Mia Lily Emma Ava Sophie Chloe Grace Ella Ruby Zoe Lucy Anna Rose Ivy Hannah Leah Nora Clara Alice Maya Eva
    Isla Amy Ellie Sara Lena Julia Molly Daisy Poppy Holly Jade Maria Sofia Laura Ada Hazel Iris Violet Stella Luna
    Willow Freya Esme Elsie Bella Olivia Emily Jessica Kate Megan Amber Beth Carla Diana Erin Fiona Gina Helen Irene
    Joy June Kara Lara Mira Nina Olga Paula Rita Sally Tara Uma Vera Wendy Yara Zara Abby Becky Cora Dora Edie Faye
    Gemma Heidi Ingrid Jenny Kitty Lottie Mabel Nell Opal Pearl Queenie Rosie Tilly Una Vicky Wren Xena Yvonne Zelda
    Agnes Bonnie Cleo Dinah Elena Flora Greta Hattie Ida Josie Kayla Lola Maisie Naomi Orla Pia Ruth Selma
    Thea""".split()
)

BOY_NAMES: tuple[str, ...] = tuple(
    """Tom Max Leo Sam Ben Jack Noah Liam Oscar Finn Theo Jacob Ethan Lucas Owen Adam Harry Henry Oliver Charlie Alfie
    Archie Freddie George Arthur Toby Jake Ryan Dylan Nathan Luke Mark Paul Peter Simon Tim Victor Will Xavier Yusuf
    Zack Aaron Bruno Colin Dan Eddie Felix Gus Hugo Ian Joel Kevin Louis Milo Ned Otto Pablo Quinn Ralph Seth Ted Ugo
    Vince Wade Alex Billy Carl Dennis Elliot Frank Gary Hector Ivan Jasper Kyle Lenny Marco Neil Omar Percy Reggie
    Stan Troy Umar Vernon Walter Abel Basil Cyril Dexter Ezra Flynn Gideon Harvey Isaac Jonah Kit Lionel Monty Nico
    Ollie Rufus Silas Tobias Wilbur Albert Barney Cedric Duncan Ernie Fergus Gilbert Hamish Jude Kenny Lewis
    Morris""".split()
)

FAMILY_NAMES: tuple[str, ...] = tuple(
    """Stone Reed Brook Hill Wood Field Green Black White Brown Gray Fox Wolf Bird Swan Lake Ford Bell Moss Vale Wells
    Marsh Shaw Hart Rowe Dale Lane Park Rivers Banks Berry Cherry Plum Ash Birch Elm Oak Pine Thorn Rose Holly Ivy
    Frost Snow Rain Storm Sun Day Knight King Prince Baker Miller Smith Cooper Turner Fisher Hunter Carter Mason
    Porter Potter Taylor Walker Webb Weaver Wright Archer Bishop Chapman Dyer Fletcher Gardner Glover Harper Keeper
    Lambert Marshall Parker Sawyer Shepherd Spencer Thatcher Tucker Warden Young Long Short Strong Bright Good Best
    Goodwin Moody Merry Noble Rich Sharp Sweet Wise Abbott Bailey Carver Draper Ellis Finch Hale Innes Jarvis Kemp
    Lowe Milne North South East West Nash Olson Pike Quill Rudd Sykes Tate Upton Vance Wilde Yates Acre Bramble Clay
    Dawson Ember Fenn Gale Heath Irwin Jolly Kidd Lark Meadow Nettle Orchard Pebble Quarry Ridge Sparrow
    Thistle""".split()
)

# Pet names are separate from people names so that "the dog named Biscuit" never reads like a person.
PET_NAMES: tuple[str, ...] = tuple(
    """Biscuit Muffin Pepper Coco Patch Buttons Ziggy Nibbles Fluffy Snowball Rusty Shadow Sparky Bubbles Pickles
    Peanut Waffles Noodle Sprout Pumpkin Ginger Cookie Marble Pebbles Socks Smudge Tiger Bingo Dotty Fudge Jelly Lucky
    Mittens Nugget Oreo Pip Rascal Scout Tinker Whiskers Acorn Bramble Clover Dusty Echo Fizz Gizmo Honey Inky Jinx
    Kiwi Lemon Mango Nutmeg Olive Paws Quincy Rolo Sunny Toffee Velvet Wiggles Yoyo Zippy Blossom Cupcake Domino
    Flapjack Gumdrop Hopper Kipper Lollipop Moonbeam Nacho Pretzel Popcorn Ripple Sherbet Truffle Twinkle""".split()
)

# Syllables for place names: a prefix and a suffix make names like "Oakford" or "Brindale".
TOWN_PREFIXES: tuple[str, ...] = tuple(
    """Oak Ash Elm Bright Brin Cold Deep Fair Glen Green High Hollow Kings Lark Long Maple Mill Moor New North Pine
    Red Rose Salt Silver Stone Sun West White Willow Wind Amber Bram Cedar Clear Copper Dun East Fern Fox Gold Hazel
    Iron Ivy Juniper Kettle Lime Marsh Nettle Otter Pebble Quail Raven Rush Sand Thorn Tide Umber Vale Wheat Wren
    Yew Alder Barley Briar Clover Dew Ember Flint Hart Heron Linden Meadow Mist Orchard Plum Reed Rye Sage
    Swan""".split()
)
TOWN_SUFFIXES: tuple[str, ...] = tuple(
    "ford dale field wood ton bury brook haven port mouth stead wick gate hill bridge well moor ley mere combe".split()
)
COUNTRY_ROOTS: tuple[str, ...] = tuple(
    """Zan Bel Cor Dal Elo Far Gal Hes Ily Jor Kal Lum Mar Nor Ost Pel Quen Ros Sal Tam Ulm Ver Wes Xan Yor Zel Amb
    Bor Cal Dun Esk Fel Gor Hal Ist Kor Lor Mir Nal Ori Par Rim Sor Tor Usk Val Wyn Ard Bry Cyr""".split()
)
COUNTRY_ENDINGS: tuple[str, ...] = tuple("dor land ia ova aria enia istan mark onia uria ell ara".split())

JOBS: tuple[str, ...] = tuple(
    """baker farmer teacher doctor nurse painter fisher builder cook gardener pilot sailor singer dancer writer
    driver tailor potter miller carpenter librarian dentist vet plumber postman firefighter shopkeeper beekeeper
    blacksmith clockmaker zookeeper photographer musician scientist engineer florist jeweller shepherd
    cobbler""".split()
) + ("bus driver", "lighthouse keeper", "ice cream seller", "train driver")

PET_ANIMALS: tuple[str, ...] = tuple(
    "dog cat rabbit hamster parrot goldfish turtle pony goat duck hen mouse lizard frog canary".split()
) + ("guinea pig",)

WILD_ANIMALS: tuple[str, ...] = tuple(
    """bear fox owl deer squirrel hedgehog badger otter eagle crow robin sparrow swan goose butterfly bee ladybug
    snail worm beetle dragonfly moth wolf lion tiger elephant giraffe zebra monkey penguin seal whale dolphin crab
    octopus starfish kangaroo koala panda camel hippo crocodile snake bat mole frog toad heron kingfisher magpie
    pigeon seagull beaver raccoon""".split()
)

COLORS: tuple[str, ...] = tuple(
    "red blue green yellow orange purple pink brown black white gray gold silver teal violet".split()
)

FOODS: tuple[str, ...] = tuple(
    """apples bananas pears grapes cherries plums oranges lemons strawberries blueberries peaches carrots peas
    potatoes tomatoes pumpkins bread cheese soup pasta rice pancakes waffles cookies cake pie honey jam eggs fish
    noodles dumplings porridge muffins biscuits popcorn pizza salad beans corn mangoes melons""".split()
)

# Things children play with or carry; each is a countable noun.
TOYS: tuple[str, ...] = tuple(
    """ball kite doll yo-yo puzzle drum whistle balloon boat train car robot top marble block crayon book hat scarf
    glove shoe sock cup bowl spoon basket bucket spade shell stone feather leaf flower stick ribbon button key map
    lamp clock bell box bag coin ring necklace bracelet mirror brush comb pillow blanket umbrella bike wagon sled tent
    flag jar candle sticker stamp pencil notebook paintbrush trumpet guitar violin flute harmonica compass torch rope
    net kettle teapot plate fork chair stool ladder""".split()
) + ("teddy bear", "jump rope", "toy truck", "music box", "paper plane", "snow globe")

PLACES: tuple[str, ...] = tuple(
    """park forest river beach garden market hill library school farm lake meadow pond bakery zoo museum playground
    harbour field orchard cave bridge castle village square station island valley mountain shop kitchen attic barn
    woods stream cliff lighthouse windmill greenhouse pier circus fair""".split()
)

PLURAL_THINGS: tuple[str, ...] = tuple(
    """flowers trees birds leaves stones shells clouds stars bugs boats ducks children lights houses hills waves
    bees butterflies mushrooms puddles berries acorns pebbles kites lanterns tents apples sheep cows horses
    fish""".split()
)

# (base, past, -ing) for activities; used as "liked to {base}", "{past} all day", "was {ing}".
ACTIVITIES: tuple[tuple[str, str, str], ...] = (
    ("run", "ran", "running"), ("jump", "jumped", "jumping"), ("swim", "swam", "swimming"),
    ("sing", "sang", "singing"), ("dance", "danced", "dancing"), ("draw", "drew", "drawing"),
    ("paint", "painted", "painting"), ("read", "read", "reading"), ("climb", "climbed", "climbing"),
    ("skip", "skipped", "skipping"), ("bake", "baked", "baking"), ("build", "built", "building"),
    ("play", "played", "playing"), ("fish", "fished", "fishing"), ("hop", "hopped", "hopping"),
    ("skate", "skated", "skating"), ("ride", "rode", "riding"), ("sail", "sailed", "sailing"),
    ("explore", "explored", "exploring"), ("write", "wrote", "writing"), ("count", "counted", "counting"),
    ("garden", "gardened", "gardening"), ("whistle", "whistled", "whistling"), ("laugh", "laughed", "laughing"),
    ("hum", "hummed", "humming"), ("sketch", "sketched", "sketching"), ("knit", "knitted", "knitting"),
    ("cook", "cooked", "cooking"), ("hike", "hiked", "hiking"), ("splash", "splashed", "splashing"),
    ("roll", "rolled", "rolling"), ("spin", "spun", "spinning"), ("rest", "rested", "resting"),
    ("wander", "wandered", "wandering"), ("listen to music", "listened to music", "listening to music"),
    ("play games", "played games", "playing games"), ("tell jokes", "told jokes", "telling jokes"),
    ("collect shells", "collected shells", "collecting shells"), ("fly kites", "flew kites", "flying kites"),
    ("pick flowers", "picked flowers", "picking flowers"),
    ("watch the stars", "watched the stars", "watching the stars"),
    ("make cards", "made cards", "making cards"), ("plant seeds", "planted seeds", "planting seeds"),
    ("feed the ducks", "fed the ducks", "feeding the ducks"), ("build sandcastles", "built sandcastles",
                                                               "building sandcastles"),
    ("play hide and seek", "played hide and seek", "playing hide and seek"),
    ("ride a bike", "rode a bike", "riding a bike"), ("climb trees", "climbed trees", "climbing trees"),
    ("bake cookies", "baked cookies", "baking cookies"), ("blow bubbles", "blew bubbles", "blowing bubbles"),
)

# Transitive verbs as (base, past) for "{name} {past} the {thing}".
ACTIONS: tuple[tuple[str, str], ...] = (
    ("find", "found"), ("hold", "held"), ("carry", "carried"), ("wash", "washed"), ("fix", "fixed"),
    ("paint", "painted"), ("hide", "hid"), ("share", "shared"), ("throw", "threw"), ("catch", "caught"),
    ("hug", "hugged"), ("clean", "cleaned"), ("open", "opened"), ("close", "closed"), ("push", "pushed"),
    ("pull", "pulled"), ("lift", "lifted"), ("drop", "dropped"), ("fold", "folded"), ("wrap", "wrapped"),
    ("polish", "polished"), ("shake", "shook"), ("kick", "kicked"), ("pick up", "picked up"), ("put down", "put down"),
    ("give", "gave"), ("take", "took"), ("bring", "brought"), ("keep", "kept"), ("mend", "mended"),
    ("check", "checked"), ("show", "showed"), ("touch", "touched"), ("count", "counted"), ("sort", "sorted"),
    ("look at", "looked at"), ("point at", "pointed at"), ("wave", "waved"), ("borrow", "borrowed"), ("tie", "tied"),
)

# Describing words, grouped by what they describe so sentences stay sensible.
THING_ADJECTIVES: tuple[str, ...] = tuple(
    """shiny old new small big tiny huge soft hard smooth rough round square long short heavy light bright dark
    pretty lovely strange funny special broken clean dirty warm cold wet dry sticky fluffy bumpy shiny striped
    spotted wooden golden silver plastic paper glass woolly sparkly noisy quiet magic lucky favourite
    precious""".split()
)
THING_ADJECTIVES = tuple(dict.fromkeys(THING_ADJECTIVES))
CHARACTER_ADJECTIVES: tuple[str, ...] = tuple(
    """kind brave curious clever gentle cheerful shy friendly helpful careful busy quiet loud silly polite patient
    honest playful calm bold smart sweet happy thoughtful generous lively cheeky sleepy hungry proud wise little
    tall young old strong quick funny caring""".split()
)
FEELINGS: tuple[str, ...] = tuple(
    """happy sad glad scared angry tired excited surprised worried proud calm lonely bored sleepy hungry thankful
    upset nervous cheerful grumpy hopeful shy curious joyful""".split()
)
PLACE_ADJECTIVES: tuple[str, ...] = tuple(
    "quiet busy sunny shady green big small cosy noisy peaceful windy muddy bright warm cool huge lovely old".split()
)
WEATHER: tuple[str, ...] = (
    "sunny", "rainy", "windy", "snowy", "cloudy", "foggy", "bright", "cold", "warm", "stormy", "hot", "frosty",
)
TIMES: tuple[str, ...] = (
    "morning", "afternoon", "evening", "day", "night", "weekend", "holiday", "spring morning", "summer day",
    "autumn afternoon", "winter evening", "Saturday", "Sunday", "Monday", "birthday",
)
SOUNDS: tuple[str, ...] = (
    "a loud bang", "a soft squeak", "a funny noise", "a little cry", "a gentle song", "a strange buzz",
    "a happy bark", "a tiny meow", "a splash", "a knock at the door", "a rustle in the bushes", "a ringing bell",
)
# Word pools for list instructions (sort / reverse / count); each is a single word without commas.
LIST_WORDS: tuple[str, ...] = tuple(
    dict.fromkeys(
        """apple pear plum fig grape lemon lime kiwi melon peach cherry mango banana orange berry cat dog cow pig hen
        duck fox owl bear frog goat horse sheep mouse lion tiger zebra red blue green pink gray gold black white
        ball kite drum book cup hat shoe sock boat car train bell key lamp box sun moon star cloud rain snow tree leaf
        rose lily river lake hill rock sand shell fish bird bee ant egg milk bread cake pie jam tea soup rice""".split()
    )
)
