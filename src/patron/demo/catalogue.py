"""Fixed reference data for the demo generator: geography, stores, catalogue, text templates.

Everything here is small and hand-written so the generated data reads like a real
mid-sized retailer; the generator only samples from it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class City:
    name: str
    region: str
    country: str
    weight: float  # share of customers living there
    time_zone: str
    utc_offset_hours: float  # standard time; DST is ignored (hours only shape the time of day)
    # E.164 prefixes (country code + area/trunk code) and how many subscriber digits follow.
    phone_prefixes: tuple[str, ...]
    phone_digits: int
    # Allowed first subscriber digits: NANP exchange codes start 2-9, some UK ranges are unassigned.
    phone_first_digits: str
    postal_prefixes: tuple[str, ...]
    tax_milli_percent: int  # sales tax in thousandths of a percent (8.875% -> 8875)
    languages: tuple[tuple[str, float], ...]
    name_locales: tuple[tuple[str, float], ...]


US_PHONE = "23456789"
# Country weights are implied by the city weights below (US ~72%, CA ~12%, GB ~16%).
# fmt: off
CITIES: tuple[City, ...] = (
    City("New York", "NY", "US", 0.12, "America/New_York", -5, ("+1212", "+1646", "+1718", "+1917"), 7, US_PHONE,
         ("100", "101", "112"), 8875, (("en-US", 0.85), ("es-US", 0.15)), (("en_US", 1.0),)),
    City("Los Angeles", "CA", "US", 0.09, "America/Los_Angeles", -8, ("+1213", "+1310", "+1323"), 7, US_PHONE,
         ("900", "902"), 9500, (("en-US", 0.75), ("es-US", 0.25)), (("en_US", 1.0),)),
    City("Chicago", "IL", "US", 0.07, "America/Chicago", -6, ("+1312", "+1773"), 7, US_PHONE,
         ("606",), 10250, (("en-US", 0.9), ("es-US", 0.1)), (("en_US", 1.0),)),
    City("Houston", "TX", "US", 0.06, "America/Chicago", -6, ("+1713", "+1832"), 7, US_PHONE,
         ("770",), 8250, (("en-US", 0.8), ("es-US", 0.2)), (("en_US", 1.0),)),
    City("San Francisco", "CA", "US", 0.06, "America/Los_Angeles", -8, ("+1415", "+1628"), 7, US_PHONE,
         ("941",), 8625, (("en-US", 1.0),), (("en_US", 1.0),)),
    City("Boston", "MA", "US", 0.06, "America/New_York", -5, ("+1617", "+1857"), 7, US_PHONE,
         ("021",), 6250, (("en-US", 1.0),), (("en_US", 1.0),)),
    City("Seattle", "WA", "US", 0.05, "America/Los_Angeles", -8, ("+1206",), 7, US_PHONE,
         ("981",), 10350, (("en-US", 1.0),), (("en_US", 1.0),)),
    City("Miami", "FL", "US", 0.05, "America/New_York", -5, ("+1305", "+1786"), 7, US_PHONE,
         ("331",), 7000, (("en-US", 0.6), ("es-US", 0.4)), (("en_US", 1.0),)),
    City("Denver", "CO", "US", 0.05, "America/Denver", -7, ("+1303", "+1720"), 7, US_PHONE,
         ("802",), 8810, (("en-US", 1.0),), (("en_US", 1.0),)),
    City("Atlanta", "GA", "US", 0.06, "America/New_York", -5, ("+1404", "+1678"), 7, US_PHONE,
         ("303",), 8900, (("en-US", 1.0),), (("en_US", 1.0),)),
    City("Phoenix", "AZ", "US", 0.05, "America/Phoenix", -7, ("+1602", "+1480"), 7, US_PHONE,
         ("850",), 8600, (("en-US", 0.85), ("es-US", 0.15)), (("en_US", 1.0),)),
    City("Toronto", "ON", "CA", 0.06, "America/Toronto", -5, ("+1416", "+1647"), 7, US_PHONE,
         ("M5V", "M4C", "M6G", "M2N"), 13000, (("en-CA", 1.0),), (("en_US", 1.0),)),
    City("Vancouver", "BC", "CA", 0.03, "America/Vancouver", -8, ("+1604", "+1778"), 7, US_PHONE,
         ("V6B", "V5K", "V6K"), 12000, (("en-CA", 1.0),), (("en_US", 1.0),)),
    City("Montreal", "QC", "CA", 0.03, "America/Toronto", -5, ("+1514", "+1438"), 7, US_PHONE,
         ("H2X", "H3A", "H2T"), 14975, (("fr-CA", 0.65), ("en-CA", 0.35)), (("fr_CA", 0.65), ("en_US", 0.35))),
    City("London", "England", "GB", 0.09, "Europe/London", 0, ("+44207", "+44208", "+44203"), 7, "234567",
         ("SW1A", "EC1A", "N1", "E1", "SE1", "W1D", "NW1"), 0, (("en-GB", 1.0),), (("en_GB", 1.0),)),
    City("Manchester", "England", "GB", 0.03, "Europe/London", 0, ("+44161",), 7, "234567",
         ("M1", "M2", "M4", "M14"), 0, (("en-GB", 1.0),), (("en_GB", 1.0),)),
    City("Birmingham", "England", "GB", 0.02, "Europe/London", 0, ("+44121",), 7, "234567",
         ("B1", "B5", "B15"), 0, (("en-GB", 1.0),), (("en_GB", 1.0),)),
    City("Edinburgh", "Scotland", "GB", 0.02, "Europe/London", 0, ("+44131",), 7, "234567",
         ("EH1", "EH3", "EH9"), 0, (("en-GB", 1.0),), (("en_GB", 1.0),)),
)
# fmt: on

# UK mobiles: +44 7xxx xxxxxx. Only ranges that libphonenumber knows as assigned mobile blocks.
GB_MOBILE_PREFIXES = ("+447400", "+447411", "+447723", "+447799", "+447866", "+447912", "+447956", "+447984")
GB_MOBILE_DIGITS = 6

# Physical shops: (city, name suffix, kind). The online store is added separately.
SHOPS: tuple[tuple[str, str, str], ...] = (
    ("New York", "SoHo", "shop"),
    ("New York", "Brooklyn", "shop"),
    ("Los Angeles", "Santa Monica", "shop"),
    ("Los Angeles", "Citadel Outlet", "outlet"),
    ("Chicago", "Michigan Avenue", "shop"),
    ("Houston", "Galleria", "shop"),
    ("San Francisco", "Union Square", "shop"),
    ("Boston", "Newbury Street", "shop"),
    ("Seattle", "Pike Place", "shop"),
    ("Miami", "Brickell", "shop"),
    ("Denver", "Cherry Creek", "shop"),
    ("Atlanta", "Ponce City", "shop"),
    ("Phoenix", "Biltmore", "shop"),
    ("Toronto", "Queen West", "shop"),
    ("Vancouver", "Robson Street", "shop"),
    ("Montreal", "Plateau", "shop"),
    ("London", "Covent Garden", "shop"),
    ("Manchester", "Northern Quarter", "shop"),
    ("Birmingham", "Bullring", "shop"),
    ("Edinburgh", "Princes Street", "shop"),
)

US_STREETS = (
    "Main",
    "Oak",
    "Maple",
    "Cedar",
    "Park",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Pine",
    "Sunset",
    "Lincoln",
    "Jackson",
    "Church",
    "River",
    "Highland",
    "Madison",
    "Franklin",
    "Spring",
    "Union",
    "Walnut",
    "Chestnut",
    "Broadway",
    "Cherry",
    "Willow",
)
US_STREET_SUFFIXES = ("St", "Ave", "Blvd", "Rd", "Ln", "Dr", "Ct", "Way", "Pl")
GB_STREETS = (
    "High",
    "Station",
    "Church",
    "Victoria",
    "Park",
    "Queens",
    "Kings",
    "Mill",
    "York",
    "Albert",
    "Manor",
    "Grove",
    "Windsor",
    "Clarence",
    "Richmond",
)
GB_STREET_SUFFIXES = ("Road", "Street", "Lane", "Avenue", "Close", "Gardens", "Terrace")

# Reserved example domains (RFC 2606): realistic-looking addresses that can never reach a
# real person if someone points the demo at a live mail server.
EMAIL_DOMAINS = (
    ("example.com", 0.40),
    ("example.net", 0.25),
    ("example.org", 0.15),
    ("mail.example.com", 0.12),
    ("inbox.example.net", 0.08),
)

TOP_CATEGORIES = ("Women", "Men", "Kids", "Baby", "Home", "Electronics", "Beauty", "Sports", "Food & Drink", "Books")
# Share of lines picked outside a customer's favourite categories.
TOP_CATEGORY_WEIGHTS = (0.14, 0.10, 0.07, 0.04, 0.15, 0.13, 0.12, 0.11, 0.09, 0.05)
KIDS_CATEGORIES = ("Kids", "Baby")

# (leaf path, median price in USD, product nouns)
LEAVES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("Women/Clothing/Dresses", 69, ("Wrap Dress", "Midi Dress", "Shirt Dress", "Slip Dress")),
    ("Women/Clothing/Tops", 35, ("Blouse", "Tee", "Cardigan", "Tank Top", "Sweater")),
    ("Women/Clothing/Trousers", 55, ("Wide-Leg Trousers", "Jeans", "Leggings", "Chinos")),
    ("Women/Shoes", 85, ("Ankle Boots", "Ballet Flats", "Sneakers", "Sandals", "Loafers")),
    ("Women/Accessories/Bags", 95, ("Tote Bag", "Crossbody Bag", "Backpack", "Clutch")),
    ("Women/Accessories/Jewelry", 45, ("Hoop Earrings", "Pendant Necklace", "Bracelet", "Ring")),
    ("Men/Clothing/Shirts", 45, ("Oxford Shirt", "Flannel Shirt", "Polo", "Linen Shirt")),
    ("Men/Clothing/Trousers", 60, ("Chinos", "Slim Jeans", "Cargo Trousers", "Joggers")),
    ("Men/Clothing/Outerwear", 140, ("Rain Jacket", "Wool Coat", "Puffer Jacket", "Bomber")),
    ("Men/Shoes", 95, ("Derby Shoes", "Sneakers", "Chelsea Boots", "Trail Shoes")),
    ("Men/Accessories/Watches", 150, ("Field Watch", "Chronograph", "Dive Watch")),
    ("Kids/Toys/Puzzles", 18, ("Jigsaw Puzzle", "Floor Puzzle", "3D Puzzle", "Brain Teaser")),
    ("Kids/Toys/Building Sets", 40, ("Building Set", "Marble Run", "Construction Kit")),
    ("Kids/Toys/Dolls & Figures", 25, ("Doll", "Action Figure", "Dollhouse", "Plush Bear")),
    ("Kids/Toys/Outdoor Play", 35, ("Scooter", "Water Blaster", "Kite", "Sandbox Set")),
    ("Kids/Clothing", 22, ("Hoodie", "Pyjamas", "Rain Boots", "Dungarees", "Party Dress")),
    ("Kids/Books", 12, ("Picture Book", "Activity Book", "Sticker Book", "Early Reader")),
    ("Kids/School", 20, ("School Backpack", "Lunch Box", "Pencil Case", "Art Set")),
    ("Baby/Feeding", 16, ("Baby Bottle Set", "Sippy Cup", "Bib Pack", "High Chair Tray")),
    ("Baby/Nursery", 90, ("Crib Mobile", "Baby Monitor", "Changing Mat", "Night Light")),
    ("Baby/Clothing", 18, ("Bodysuit Pack", "Sleepsuit", "Knitted Hat", "Romper")),
    ("Baby/Strollers & Car Seats", 260, ("Stroller", "Car Seat", "Baby Carrier")),
    ("Baby/Bath & Care", 14, ("Baby Shampoo", "Hooded Towel", "Bath Thermometer", "Nappy Cream")),
    ("Home/Kitchen/Cookware", 65, ("Frying Pan", "Dutch Oven", "Saucepan Set", "Wok")),
    ("Home/Kitchen/Tableware", 30, ("Dinner Plate Set", "Mug Set", "Glass Tumblers", "Serving Bowl")),
    ("Home/Kitchen/Appliances", 110, ("Espresso Machine", "Blender", "Toaster", "Kettle")),
    ("Home/Bedding", 75, ("Duvet Cover", "Pillow Pair", "Throw Blanket", "Sheet Set")),
    ("Home/Decor", 40, ("Table Lamp", "Vase", "Picture Frame", "Scented Candle", "Cushion")),
    ("Home/Garden", 35, ("Planter", "Garden Tools Set", "Watering Can", "Bird Feeder")),
    ("Electronics/Audio", 120, ("Wireless Earbuds", "Bluetooth Speaker", "Headphones", "Soundbar")),
    ("Electronics/Phone Accessories", 25, ("Phone Case", "Charging Cable", "Power Bank", "Screen Protector")),
    ("Electronics/Computers", 420, ("Laptop", "Monitor", "Keyboard", "Mouse", "Tablet")),
    ("Electronics/Smart Home", 70, ("Smart Plug", "Smart Bulb", "Video Doorbell", "Thermostat")),
    ("Electronics/Gaming", 55, ("Game Controller", "Gaming Headset", "Video Game", "Console Stand")),
    ("Beauty/Skincare", 32, ("Moisturiser", "Serum", "Cleanser", "Sunscreen", "Face Mask")),
    ("Beauty/Makeup", 22, ("Lipstick", "Mascara", "Foundation", "Eyeshadow Palette")),
    ("Beauty/Fragrance", 75, ("Eau de Parfum", "Eau de Toilette", "Body Mist")),
    ("Beauty/Hair", 18, ("Shampoo", "Conditioner", "Hair Oil", "Hair Dryer")),
    ("Sports/Fitness", 40, ("Yoga Mat", "Dumbbell Set", "Resistance Bands", "Kettlebell")),
    ("Sports/Outdoor/Camping", 85, ("Tent", "Sleeping Bag", "Camping Stove", "Headlamp")),
    ("Sports/Cycling", 60, ("Bike Helmet", "Bike Lights", "Cycling Gloves", "Bike Lock")),
    ("Sports/Running", 90, ("Running Shoes", "Running Jacket", "Running Belt", "Sports Watch")),
    ("Food & Drink/Coffee & Tea", 16, ("Coffee Beans", "Loose Leaf Tea", "Ground Coffee", "Matcha")),
    ("Food & Drink/Snacks", 7, ("Dark Chocolate", "Granola", "Trail Mix", "Cookies")),
    ("Food & Drink/Pantry", 11, ("Olive Oil", "Pasta Sauce", "Honey", "Spice Set")),
    ("Books/Fiction", 16, ("Novel", "Thriller", "Short Stories", "Fantasy Saga")),
    ("Books/Cooking", 28, ("Cookbook", "Baking Book", "Vegetarian Cookbook")),
    ("Books/Non-fiction", 22, ("Biography", "History Book", "Science Book", "Travel Guide")),
)

# Brands per top category: (name, tier). Invented names, so no real trademark appears.
BRANDS: dict[str, tuple[tuple[str, str], ...]] = {
    "Women": (
        ("Maison Lune", "premium"),
        ("Aster & Vale", "premium"),
        ("Everyday Studio", "standard"),
        ("Northline", "standard"),
        ("Basics Co.", "value"),
    ),
    "Men": (
        ("Harlow & Finch", "premium"),
        ("Fieldcraft", "standard"),
        ("Northline", "standard"),
        ("Basics Co.", "value"),
    ),
    "Kids": (("Little Atlas", "premium"), ("Playwise", "standard"), ("Tiny Town", "standard"), ("Sunny Days", "value")),
    "Baby": (("Nestling", "premium"), ("Cuddle Co.", "standard"), ("First Steps", "value")),
    "Home": (
        ("Oakhearth", "premium"),
        ("Linen Lane", "standard"),
        ("Casa Bright", "standard"),
        ("Homebase Value", "value"),
    ),
    "Electronics": (("Aurion", "premium"), ("Voltix", "standard"), ("Pixelline", "standard"), ("Zapp", "value")),
    "Beauty": (("Lumière Atelier", "premium"), ("Glowry", "standard"), ("Pure & Simple", "value")),
    "Sports": (("Summit Pro", "premium"), ("Stride", "standard"), ("ActiveOne", "value")),
    "Food & Drink": (("Terra Fina", "premium"), ("Good Pantry", "standard"), ("Daily Bites", "value")),
    "Books": (("Lantern Press", "premium"), ("Paperleaf", "standard"), ("Pocket Reads", "value")),
}
TIER_PRICE_FACTOR = {"value": 0.6, "standard": 1.0, "premium": 1.9}
# unit_cost as a share of price: premium lines carry the best margins.
TIER_COST_SHARE = {"value": (0.62, 0.72), "standard": (0.48, 0.58), "premium": (0.32, 0.44)}
ADJECTIVES = (
    "Classic",
    "Essential",
    "Signature",
    "Everyday",
    "Deluxe",
    "Organic",
    "Modern",
    "Heritage",
    "Compact",
    "Soft",
    "Pro",
    "Lite",
)
COLOURS = ("black", "white", "navy", "grey", "green", "red", "beige", "blue")

# Interest tags stored on customers; the top categories imply some of them.
INTERESTS = (
    "fashion",
    "shoes",
    "parenting",
    "toys",
    "cooking",
    "home decor",
    "gardening",
    "tech",
    "gaming",
    "audio",
    "fitness",
    "running",
    "outdoors",
    "beauty",
    "reading",
    "coffee",
)
CATEGORY_INTERESTS = {
    "Women": ("fashion", "shoes"),
    "Men": ("fashion", "shoes"),
    "Kids": ("parenting", "toys"),
    "Baby": ("parenting",),
    "Home": ("cooking", "home decor", "gardening"),
    "Electronics": ("tech", "gaming", "audio"),
    "Beauty": ("beauty",),
    "Sports": ("fitness", "running", "outdoors"),
    "Food & Drink": ("coffee", "cooking"),
    "Books": ("reading",),
}

ACQUISITION_CHANNELS = (
    # (name, share, mean cost in USD; 0 = free)
    ("in_store", 0.30, 0.0),
    ("organic_search", 0.17, 0.0),
    ("paid_search", 0.15, 32.0),
    ("social", 0.12, 24.0),
    ("referral", 0.08, 12.0),
    ("affiliate", 0.05, 18.0),
    ("email", 0.05, 3.0),
    ("direct", 0.08, 0.0),
)

RETURN_REASONS = (
    "Wrong size",
    "Changed mind",
    "Damaged on arrival",
    "Not as described",
    "Arrived too late",
    "Better price elsewhere",
)
# Reasons that also make the customer complain before sending the goods back.
COMPLAINT_RETURN_REASONS = ("Damaged on arrival", "Not as described", "Arrived too late")
REFUND_REASONS = ("Late delivery goodwill", "Price match", "Missing item", "Service recovery")
COMPLAINT_REFUND_REASONS = ("Late delivery goodwill", "Missing item", "Service recovery")

# Interaction kinds drawn at random per customer: (kind, channel choices, direction, subjects).
# Visits, complaints and thank-you notes are derived from orders and returns instead.
RANDOM_INTERACTIONS: tuple[tuple[str, tuple[str, ...], str, tuple[str, ...]], ...] = (
    (
        "call",
        ("phone",),
        "inbound",
        (
            "Question about an order",
            "Delivery status",
            "Product availability",
            "Store opening hours",
            "Update my address",
        ),
    ),
    ("call", ("phone",), "outbound", ("Order ready for pick-up", "Follow-up on your return", "Courtesy call")),
    (
        "chat",
        ("chat",),
        "inbound",
        ("Sizing advice", "Where is my order?", "Discount code not working", "Gift wrapping", "Stock check"),
    ),
    (
        "email_in",
        ("email",),
        "inbound",
        ("Invoice request", "Change delivery address", "Product question", "Warranty question"),
    ),
    ("web_form", ("web",), "inbound", ("Contact form", "Back-in-stock request", "Catalogue request")),
    (
        "feedback",
        ("web", "email", "in_store"),
        "inbound",
        ("Great service", "Checkout was slow", "Love the new collection", "App feedback"),
    ),
    (
        "note",
        ("internal",),
        "internal",
        (
            "Prefers morning deliveries",
            "VIP: greet by name",
            "Asked not to be called at work",
            "Interested in loyalty programme",
        ),
    ),
)
