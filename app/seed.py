"""The deterministic demo shop: customers, a product catalogue, orders in every status, returns.

``demo_fixtures(seed, customers, orders, now)`` returns rows in the fixture format of
``app.fixtures`` (the transcript format, design.md section 5); ``seed_database`` loads them.
Same arguments, same output: all randomness comes from ``random.Random(seed)`` and every date is
computed relative to ``now`` (default ``DEFAULT_NOW``, 2026-03-15 10:00, naive UTC). The live demo
passes the current time, evals a frozen one. Datetimes are ISO strings (``2026-03-05T14:32:00``),
dates ``2026-03-05``; money is a float with 2 decimals.

The catalogue (about 60 variants, SKUs like ``TRG-SLT-09``) does not depend on the seed. The demo
entries below come first and do not depend on the seed either, only on ``now``; generated customers
(``C0003``..) and orders (``SD-10009``.., numbered by ``placed_at``) and returns (``RMA-1002``..) follow.

Fixed demo entries (``N`` = now, ``T`` = N's date; "bd" = business days):

=========  ========  ============  ===========================================================================
Order      Customer  Status        Facts
=========  ========  ============  ===========================================================================
SD-10001   C0001     delivered     Trail Runner GTX (Slate, 9) TRG-SLT-09, $139.00; UPS 1Z4F7E290312345678;
                                   delivered_at T-10 days (final "Delivered" event, San Francisco, CA)
SD-10002   C0001     in_transit    Noise-Cancelling Headphones (Black) NCH-BLK $249.00 + Wool Beanie (Charcoal)
                                   BNE-CHR $28.00; UPS 1Z4F7E290387654321; shipped on the last business day at
                                   least 2 days before T, expected T + 2 bd; events Reno, NV -> San Francisco, CA
SD-10003   C0001     processing    Merino Crew Sweater (Oatmeal, M) MCS-OAT-M + Enamel Camp Mug (Cream) x2;
                                   placed N-5h; no shipment
SD-10004   C0001     delayed       Ridgeline Rain Jacket (Lake Blue, M) RRJ-BLU-M $149.00; FedEx 794612203345;
                                   expected_delivery in the past; last event "Delayed: severe weather in the
                                   area" at Sacramento, CA
SD-10005   C0001     pending       Wireless Earbuds Pro (White) WEP-WHT $129.00 + Mineral Sunscreen SPF 30;
                                   placed N-40min; no shipment
SD-10006   C0002     shipped       Daypack 24L (Forest) DPK-FOR $89.00 + Hiking Socks 3-Pack (L); USPS
                                   9400111899223344556677; shipped T-1, events at Reno, NV only
SD-10007   C0002     cancelled     Insulated Parka (Black, L) PKA-BLK-L $229.00; paypal; no shipment
SD-10008   C0002     returned      Merino Crew Sweater (Charcoal, L) MCS-CHR-L + Basic Organic Tee (White, L);
                                   placed N-45 days, delivered ~1 week later; return RMA-1001 (the sweater,
                                   status refunded, refund $98.00, reason "Too large")
=========  ========  ============  ===========================================================================

Customers: C0001 Ada Park, ada.park@example.com, zip "94110", +1 415 555 0101,
"1250 Valencia St, San Francisco, CA 94110", pays with visa-4242;
C0002 Ben Okafor, ben.okafor@example.com, zip "10027", +1 212 555 0102,
"412 W 124th St, Apt 3B, New York, NY 10027", pays with mastercard-5555 (SD-10007 with paypal).

Id ranges with the defaults: customers C0001-C0120, orders SD-10001-SD-10400, returns from RMA-1001.
Transcript fixtures added on top of the demo shop must use other ids (e.g. C900, SD-20001, RMA-9001).
"""

from __future__ import annotations

import itertools
import random
import unicodedata
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine

from app.db import Customer, Order, OrderItem, Payment, Product, Return, ReturnItem, Shipment, TrackingEvent
from app.fixtures import ORDER_STATUSES, load_fixtures, validate

DEFAULT_NOW = datetime(2026, 3, 15, 10, 0)
MAX_ORDERS_PER_CUSTOMER = 8
MAX_CUSTOMERS = 5000
ORIGIN = "Reno, NV"

# ---- catalogue ------------------------------------------------------------------------------------
# (family id, sku code, name, category, price, final_sale, variants: (sku suffix, attributes, stock))
_Variant = tuple[str, dict[str, str], int]
_CATALOGUE: tuple[tuple[str, str, str, str, float, bool, tuple[_Variant, ...]], ...] = (
    ("trail-runner-gtx", "TRG", "Trail Runner GTX", "shoes", 139.00, False, (
        ("SLT-08", {"colour": "Slate", "size": "8"}, 6),
        ("SLT-09", {"colour": "Slate", "size": "9"}, 4),
        ("SLT-10", {"colour": "Slate", "size": "10"}, 0),
        ("MOS-09", {"colour": "Moss", "size": "9"}, 3),
        ("MOS-10", {"colour": "Moss", "size": "10"}, 5),
    )),
    ("canyon-mid-boot", "CMB", "Canyon Mid Hiking Boot", "shoes", 164.00, False, (
        ("BRN-09", {"colour": "Brown", "size": "9"}, 7),
        ("BRN-10", {"colour": "Brown", "size": "10"}, 2),
        ("BRN-11", {"colour": "Brown", "size": "11"}, 4),
    )),
    ("harbor-canvas-sneaker", "HCS", "Harbor Canvas Sneaker", "shoes", 44.99, True, (
        ("WHT-07", {"colour": "White", "size": "7"}, 3),
        ("NVY-09", {"colour": "Navy", "size": "9"}, 1),
    )),
    ("merino-crew-sweater", "MCS", "Merino Crew Sweater", "apparel", 98.00, False, (
        ("OAT-M", {"colour": "Oatmeal", "size": "M"}, 12),
        ("OAT-L", {"colour": "Oatmeal", "size": "L"}, 8),
        ("CHR-M", {"colour": "Charcoal", "size": "M"}, 9),
        ("CHR-L", {"colour": "Charcoal", "size": "L"}, 0),
        ("CHR-XL", {"colour": "Charcoal", "size": "XL"}, 5),
    )),
    ("organic-flannel-shirt", "OFS", "Organic Flannel Shirt", "apparel", 58.00, False, (
        ("RED-M", {"colour": "Red Plaid", "size": "M"}, 10),
        ("RED-L", {"colour": "Red Plaid", "size": "L"}, 6),
        ("GRN-M", {"colour": "Green Plaid", "size": "M"}, 7),
    )),
    ("trailhead-pants", "TPN", "Trailhead Pants", "apparel", 79.00, False, (
        ("OLV-32", {"colour": "Olive", "size": "32x32"}, 8),
        ("OLV-34", {"colour": "Olive", "size": "34x32"}, 5),
    )),
    ("basic-organic-tee", "BOT", "Basic Organic Tee", "apparel", 24.50, False, (
        ("WHT-M", {"colour": "White", "size": "M"}, 30),
        ("WHT-L", {"colour": "White", "size": "L"}, 22),
        ("BLK-M", {"colour": "Black", "size": "M"}, 25),
    )),
    ("fleece-quarter-zip", "FQZ", "Fleece Quarter-Zip", "apparel", 39.00, True, (
        ("GRY-M", {"colour": "Heather Grey", "size": "M"}, 4),
        ("GRY-L", {"colour": "Heather Grey", "size": "L"}, 0),
    )),
    ("ridgeline-rain-jacket", "RRJ", "Ridgeline Rain Jacket", "outerwear", 149.00, False, (
        ("BLU-M", {"colour": "Lake Blue", "size": "M"}, 6),
        ("BLU-L", {"colour": "Lake Blue", "size": "L"}, 3),
        ("BLK-M", {"colour": "Black", "size": "M"}, 0),
    )),
    ("down-puffer-vest", "DPV", "Down Puffer Vest", "outerwear", 119.00, False, (
        ("NVY-S", {"colour": "Navy", "size": "S"}, 5),
        ("NVY-M", {"colour": "Navy", "size": "M"}, 8),
    )),
    ("insulated-parka", "PKA", "Insulated Parka", "outerwear", 229.00, False, (
        ("BLK-M", {"colour": "Black", "size": "M"}, 4),
        ("BLK-L", {"colour": "Black", "size": "L"}, 2),
    )),
    ("daypack-24l", "DPK", "Daypack 24L", "bags", 89.00, False, (
        ("BLK", {"colour": "Black"}, 15),
        ("FOR", {"colour": "Forest"}, 9),
    )),
    ("waxed-canvas-tote", "WCT", "Waxed Canvas Tote", "bags", 72.00, False, (
        ("TAN", {"colour": "Tan"}, 11),
    )),
    ("travel-duffel-40l", "TDF", "Travel Duffel 40L", "bags", 129.00, False, (
        ("BLK", {"colour": "Black"}, 6),
    )),
    ("wool-beanie", "BNE", "Wool Beanie", "accessories", 28.00, False, (
        ("CHR", {"colour": "Charcoal"}, 20),
        ("RST", {"colour": "Rust"}, 14),
    )),
    ("leather-belt", "BLT", "Leather Belt", "accessories", 45.00, False, (
        ("BRN-M", {"colour": "Brown", "size": "M"}, 9),
        ("BRN-L", {"colour": "Brown", "size": "L"}, 7),
    )),
    ("polarized-sunglasses", "PSG", "Polarized Sunglasses", "accessories", 59.00, False, (
        ("TRT", {"colour": "Tortoise"}, 10),
    )),
    ("hiking-socks-3-pack", "HSK", "Hiking Socks 3-Pack", "accessories", 22.00, False, (
        ("M", {"size": "M"}, 40),
        ("L", {"size": "L"}, 35),
    )),
    ("noise-cancelling-headphones", "NCH", "Noise-Cancelling Headphones", "electronics", 249.00, False, (
        ("BLK", {"colour": "Black"}, 8),
        ("SND", {"colour": "Sand"}, 3),
    )),
    ("portable-solar-charger", "PSC", "Portable Solar Charger", "electronics", 69.00, False, (
        ("STD", {"capacity": "10000 mAh"}, 12),
    )),
    ("rechargeable-headlamp", "RHL", "Rechargeable Headlamp", "electronics", 39.00, False, (
        ("STD", {"colour": "Orange"}, 18),
    )),
    ("mini-bluetooth-speaker", "MBS", "Mini Bluetooth Speaker", "electronics", 34.99, True, (
        ("GRY", {"colour": "Grey"}, 5),
    )),
    ("wireless-earbuds-pro", "WEP", "Wireless Earbuds Pro", "earbuds", 129.00, False, (
        ("BLK", {"colour": "Black"}, 10),
        ("WHT", {"colour": "White"}, 7),
    )),
    ("sport-earbuds", "SEB", "Sport Earbuds", "earbuds", 59.00, False, (
        ("BLU", {"colour": "Blue"}, 0),
    )),
    ("enamel-camp-mug", "ECM", "Enamel Camp Mug", "home", 18.00, False, (
        ("CRM", {"colour": "Cream"}, 50),
        ("FOR", {"colour": "Forest"}, 32),
    )),
    ("wool-throw-blanket", "WTB", "Wool Throw Blanket", "home", 89.00, False, (
        ("GRY", {"colour": "Grey"}, 6),
    )),
    ("cedar-soy-candle", "CSC", "Cedar Soy Candle", "home", 24.00, False, (
        ("STD", {"scent": "Cedar"}, 25),
    )),
    ("pour-over-coffee-set", "POC", "Pour-Over Coffee Set", "home", 42.00, False, (
        ("STD", {"colour": "Matte Black"}, 9),
    )),
    ("mineral-sunscreen-spf30", "MSS", "Mineral Sunscreen SPF 30", "beauty", 19.00, False, (
        ("STD", {"volume": "100 ml"}, 45),
    )),
    ("lip-balm-trio", "LBT", "Lip Balm Trio", "beauty", 12.00, False, (
        ("STD", {"flavours": "Mint, Honey, Unscented"}, 60),
    )),
    ("solid-shampoo-bar", "SSB", "Solid Shampoo Bar", "beauty", 14.00, False, (
        ("STD", {"scent": "Rosemary"}, 33),
    )),
    ("merino-boxer-briefs", "MBB", "Merino Boxer Briefs", "underwear", 32.00, False, (
        ("BLK-M", {"colour": "Black", "size": "M"}, 24),
        ("BLK-L", {"colour": "Black", "size": "L"}, 18),
    )),
    ("seamless-sports-bra", "SSP", "Seamless Sports Bra", "underwear", 38.00, False, (
        ("SAG-S", {"colour": "Sage", "size": "S"}, 9),
        ("SAG-M", {"colour": "Sage", "size": "M"}, 11),
    )),
    ("swim-trunks", "SWT", "Swim Trunks", "swimwear", 48.00, False, (
        ("NVY-M", {"colour": "Navy", "size": "M"}, 8),
        ("NVY-L", {"colour": "Navy", "size": "L"}, 6),
    )),
    ("one-piece-swimsuit", "OPS", "One-Piece Swimsuit", "swimwear", 84.00, True, (
        ("TEA-S", {"colour": "Teal", "size": "S"}, 2),
    )),
    ("gift-card", "GC", "Fern & Field Gift Card", "gift_card", 0.0, False, (
        ("025", {"amount": "25.00"}, 999),
        ("050", {"amount": "50.00"}, 999),
        ("100", {"amount": "100.00"}, 999),
    )),
)

_CATEGORY_WEIGHTS = {
    "shoes": 15, "apparel": 22, "outerwear": 10, "bags": 8, "accessories": 11, "electronics": 8,
    "earbuds": 5, "home": 9, "beauty": 5, "underwear": 4, "swimwear": 3, "gift_card": 2,
}
_HYGIENE = {"underwear", "swimwear", "beauty", "earbuds"}
_SIZED = {"shoes", "apparel", "outerwear", "swimwear", "underwear"}


def catalogue() -> list[dict[str, Any]]:
    """The product rows (same for every seed)."""
    rows = []
    for family, code, name, category, price, final_sale, variants in _CATALOGUE:
        for suffix, attrs, stock in variants:
            variant_price = float(attrs["amount"]) if category == "gift_card" else price
            label = f"${attrs['amount']}" if category == "gift_card" else ", ".join(attrs.values())
            rows.append({"sku": f"{code}-{suffix}", "product": family, "name": f"{name} ({label})",
                         "attributes": dict(attrs), "price": round(variant_price, 2), "category": category,
                         "stock": stock, "final_sale": final_sale})
    return rows


# ---- places and people ----------------------------------------------------------------------------
# (city, state, zips, phone area code, region); regions pick the carrier route from Reno, NV.
_CITIES: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    ("San Francisco", "CA", ("94110", "94114", "94117", "94122"), "415", "west"),
    ("Oakland", "CA", ("94610", "94611"), "510", "west"),
    ("Sacramento", "CA", ("95816", "95818"), "916", "west"),
    ("Los Angeles", "CA", ("90026", "90039", "90042"), "213", "west"),
    ("San Diego", "CA", ("92104", "92116"), "619", "west"),
    ("Sparks", "NV", ("89431", "89436"), "775", "local"),
    ("Las Vegas", "NV", ("89104", "89117"), "702", "west"),
    ("Portland", "OR", ("97202", "97214"), "503", "northwest"),
    ("Seattle", "WA", ("98103", "98115", "98122"), "206", "northwest"),
    ("Boise", "ID", ("83702",), "208", "mountain"),
    ("Salt Lake City", "UT", ("84102", "84105"), "801", "mountain"),
    ("Denver", "CO", ("80205", "80218"), "303", "mountain"),
    ("Missoula", "MT", ("59801",), "406", "mountain"),
    ("Phoenix", "AZ", ("85004", "85013"), "602", "southwest"),
    ("Albuquerque", "NM", ("87106",), "505", "southwest"),
    ("Austin", "TX", ("78704", "78751"), "512", "texas"),
    ("Dallas", "TX", ("75206",), "214", "texas"),
    ("Houston", "TX", ("77008",), "713", "texas"),
    ("Minneapolis", "MN", ("55406", "55408"), "612", "midwest"),
    ("Chicago", "IL", ("60614", "60647"), "312", "midwest"),
    ("Madison", "WI", ("53703",), "608", "midwest"),
    ("Ann Arbor", "MI", ("48104",), "734", "midwest"),
    ("Columbus", "OH", ("43201",), "614", "midwest"),
    ("Nashville", "TN", ("37206",), "615", "south"),
    ("Atlanta", "GA", ("30306", "30307"), "404", "south"),
    ("Durham", "NC", ("27701",), "919", "south"),
    ("Asheville", "NC", ("28801",), "828", "south"),
    ("Miami", "FL", ("33133",), "305", "south"),
    ("Washington", "DC", ("20009",), "202", "northeast"),
    ("Philadelphia", "PA", ("19103", "19147"), "215", "northeast"),
    ("Pittsburgh", "PA", ("15213",), "412", "northeast"),
    ("New York", "NY", ("10027", "10025", "10003"), "212", "northeast"),
    ("Brooklyn", "NY", ("11215", "11238"), "718", "northeast"),
    ("Boston", "MA", ("02118", "02130"), "617", "northeast"),
    ("Cambridge", "MA", ("02139",), "617", "northeast"),
    ("Burlington", "VT", ("05401",), "802", "northeast"),
    ("Portland", "ME", ("04101",), "207", "northeast"),
)
_HUBS = {
    "local": (),
    "west": ("Sacramento, CA",),
    "northwest": ("Sacramento, CA", "Portland, OR"),
    "mountain": ("Salt Lake City, UT",),
    "southwest": ("Las Vegas, NV", "Phoenix, AZ"),
    "texas": ("Salt Lake City, UT", "Dallas, TX"),
    "midwest": ("Salt Lake City, UT", "Chicago, IL"),
    "south": ("Salt Lake City, UT", "Memphis, TN"),
    "northeast": ("Salt Lake City, UT", "Chicago, IL", "Secaucus, NJ"),
}
_STANDARD_TRANSIT = {  # business days, (min, max); SHOP.md promises 3-5 for standard shipping
    "local": (2, 2), "west": (2, 3), "northwest": (3, 3), "mountain": (3, 4), "southwest": (3, 4),
    "texas": (4, 5), "midwest": (4, 5), "south": (4, 5), "northeast": (4, 5),
}

_FIRST_NAMES = (
    "Maya", "Liam", "Sofia", "Noah", "Priya", "Ethan", "Amara", "Lucas", "Hana", "Mateo", "Grace", "Omar",
    "Chloe", "Daniel", "Aisha", "Samuel", "Elena", "Kenji", "Olivia", "Diego", "Nora", "Arjun", "Leah",
    "Gabriel", "Zoe", "Tomas", "Fatima", "Isaac", "Mei", "Julian", "Ingrid", "Malik", "Rosa", "Henry",
    "Yuki", "Caleb", "Lucia", "Kwame", "Emma", "Rafael", "Anika", "Owen", "Camila", "Jonah", "Sana",
    "Felix", "Imani", "Victor", "Clara", "Andre", "Naomi", "Hugo", "Ines", "Marcus", "Tara", "Jamal",
    "Freya", "Luis", "Mira", "Theo", "Renee", "Dmitri", "Esther", "Kai", "Lena", "Ravi", "Beatriz",
    "Connor", "Nadia", "Wei", "Sienna", "Tobias", "Layla", "Elijah", "Carmen", "Jin", "Harper", "Abdul",
    "Josefina", "Miles",
)
_LAST_NAMES = (
    "Nguyen", "Garcia", "Smith", "Patel", "Johnson", "Kim", "Martinez", "Chen", "Williams", "Okonkwo",
    "Brown", "Rossi", "Lopez", "Cohen", "Singh", "Anderson", "Tanaka", "Hernandez", "Murphy", "Ali",
    "Davis", "Novak", "Rodriguez", "Schmidt", "Wilson", "Ivanova", "Thompson", "Mensah", "Moore",
    "O'Brien", "Sato", "Rivera", "Larsen", "Hughes", "Khan", "Bennett", "Fischer", "Alvarez", "Clarke",
    "Haddad", "Walker", "Moreau", "Reyes", "Johansson", "Taylor", "Ortiz", "Mbeki", "Park", "Castillo",
    "Weber", "Greene", "Dubois", "Ramos", "Yamamoto", "Foster", "Adeyemi", "Silva", "Kowalski", "Brooks",
    "Costa", "Lindqvist", "Morales", "Hoffman", "Bianchi", "Coleman", "Nakamura", "Sullivan", "Torres",
    "Abara", "McKenzie", "Dang", "Flores", "Ward", "Jensen", "Ruiz", "Liu", "Gupta", "Price", "Vargas",
    "Yilmaz",
)
_STREETS = (
    "Oak St", "Maple Ave", "Cedar Ln", "Pine St", "Elm St", "Lakeview Dr", "Park Ave", "Hillcrest Rd",
    "Washington St", "Sunset Blvd", "River Rd", "Highland Ave", "Chestnut St", "Mission St", "Franklin Ave",
    "Willow Way", "Grant St", "Jefferson Ave", "Birch St", "Spruce St", "Aspen Ct", "Magnolia Dr",
    "Lincoln Ave", "Ridge Rd", "Meadow Ln", "Summit Ave", "Harbor Way", "Broadway", "Union St", "Water St",
)

# ---- carriers --------------------------------------------------------------------------------------
_WORDS = {  # carrier -> (label created, picked up, departed, arrived, out for delivery)
    "UPS": ("Shipper created a label", "Picked up by UPS", "Departed from facility", "Arrived at facility",
            "Out for delivery"),
    "USPS": ("Shipping label created, USPS awaiting item", "Accepted at USPS origin facility",
             "Departed USPS regional facility", "Arrived at USPS regional facility", "Out for delivery"),
    "FedEx": ("Shipment information sent to FedEx", "Picked up", "Departed FedEx hub", "Arrived at FedEx hub",
              "On FedEx vehicle for delivery"),
}
_DELAYS = (
    "Delayed: severe weather in the area", "Delayed: weather conditions", "Delayed: carrier backlog",
    "Delayed: missed connection at hub", "Delayed: address information needed", "Delayed: mechanical issue",
)
_RETURN_REASONS_FIT = ("Too small", "Too large", "Didn't fit as expected", "Ordered two sizes, kept one")
_RETURN_REASONS = ("Changed my mind", "Not as pictured", "Colour different than expected", "Arrived damaged",
                   "Ordered by mistake", "Quality not as expected")
_STATUS_WEIGHTS = {  # share of generated orders
    "pending": 7, "processing": 8, "shipped": 8, "in_transit": 11, "delayed": 7, "delivered": 35,
    "cancelled": 10, "returned": 14,
}
_METHODS = {"standard": 76, "express": 17, "next_day": 7}
_METHOD_NOTE = {"standard": "Standard shipping", "express": "Express shipping", "next_day": "Next-day shipping"}


# ---- small helpers ---------------------------------------------------------------------------------
def _iso(value: datetime) -> str:
    return value.replace(second=0, microsecond=0).isoformat(timespec="seconds")


def _add_bd(day: date, n: int) -> date:
    while n > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def _weekday_on_or_before(day: date) -> date:
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _at(day: date, rng: random.Random, start_h: float, end_h: float) -> datetime:
    minutes = rng.randint(int(start_h * 60), int(end_h * 60))
    return datetime(day.year, day.month, day.day) + timedelta(minutes=minutes)


def _tracking_number(rng: random.Random, carrier: str) -> str:
    if carrier == "UPS":  # 1Z + 6-char shipper + 2-digit service + 8 digits
        alnum = "ABCDEFGHJKLMNPRSTUVWXY0123456789"
        return "1Z" + "".join(rng.choice(alnum) for _ in range(6)) + rng.choice(("01", "02", "03")) + \
            "".join(rng.choice("0123456789") for _ in range(8))
    if carrier == "USPS":  # 22 digits
        return "9400" + "".join(rng.choice("0123456789") for _ in range(18))
    return "".join(rng.choice("0123456789") for _ in range(12))  # FedEx: 12 digits


def _email_local(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum() or ch == "-")


def _route(city: str, state: str, region: str) -> list[str]:
    stops = [ORIGIN, *_HUBS[region], f"{city}, {state}"]
    route: list[str] = []
    for stop in stops:
        if stop in route:  # a customer in a hub city: the parcel arrives there once
            continue
        route.append(stop)
    return route


def _timeline(rng: random.Random, carrier: str, route: list[str], label_at: datetime, pickup_at: datetime,
              delivery_day: date) -> list[tuple[datetime, str, str]]:
    """Every planned event from label to delivery: (at, location, description), in time order."""
    label, picked_up, departed, arrived, out = _WORDS[carrier]
    out_at = _at(delivery_day, rng, 7, 9.5)
    delivered_at = out_at + timedelta(minutes=rng.randint(45, 9 * 60))
    hops: list[tuple[str, str]] = []
    for prev, nxt in itertools.pairwise(route):
        hops += [(prev, departed), (nxt, arrived)]
    start, end = pickup_at + timedelta(minutes=90), out_at - timedelta(minutes=60)
    span = max((end - start).total_seconds() / 60, 1.0)
    step = span / max(len(hops), 1)
    times = sorted(start + timedelta(minutes=min(span, step * (i + rng.uniform(0.1, 0.9))))
                   for i in range(len(hops)))
    events = [(label_at, ORIGIN, label), (pickup_at, ORIGIN, picked_up)]
    events += [(t.replace(second=0, microsecond=0), loc, desc) for t, (loc, desc) in zip(times, hops, strict=True)]
    events += [(out_at, route[-1], out), (delivered_at, route[-1], "Delivered")]
    return events


def _events(events: list[tuple[datetime, str, str]]) -> list[dict[str, str]]:
    return [{"at": _iso(at), "location": loc, "description": desc} for at, loc, desc in events]


def _item(product: Mapping[str, Any], qty: int = 1) -> dict[str, Any]:
    return {"sku": product["sku"], "name": product["name"], "qty": qty, "price": product["price"],
            "category": product["category"], "final_sale": product["final_sale"]}


def _total(items: list[dict[str, Any]]) -> float:
    return round(sum(i["price"] * i["qty"] for i in items), 2)


def _returnable(item: Mapping[str, Any]) -> bool:
    return not item["final_sale"] and item["category"] not in _HYGIENE | {"gift_card"}


# ---- shipments ---------------------------------------------------------------------------------------
class _Builder:
    """Makes orders consistent with their status and ``now``. One instance per ``demo_fixtures`` call."""

    def __init__(self, rng: random.Random, now: datetime, products: list[dict[str, Any]]) -> None:
        self.rng = rng
        self.now = now
        self.today = now.date()
        self.products = products
        self.tracking: set[str] = set()
        self.by_category: dict[str, list[dict[str, Any]]] = {}
        for p in products:
            self.by_category.setdefault(p["category"], []).append(p)

    # -- dates
    def _pickup_after(self, placed_at: datetime) -> datetime:
        day = placed_at.date()
        if day.weekday() >= 5 or placed_at.hour >= 13:  # orders ship within 1 business day
            day = _add_bd(day, 1)
        pickup = _at(day, self.rng, 16, 19.5)
        return max(pickup, placed_at + timedelta(hours=3))

    def _transit(self, method: str, region: str) -> int:
        if method == "next_day":
            return 1
        if method == "express":
            return 1 if region in ("local", "west") else 2
        lo, hi = _STANDARD_TRANSIT[region]
        return self.rng.randint(lo, hi)

    def _label_at(self, placed_at: datetime, pickup_at: datetime) -> datetime:
        earliest = placed_at + timedelta(minutes=20)
        label = pickup_at - timedelta(minutes=self.rng.randint(90, 300))
        return max(label, earliest) if earliest < pickup_at else placed_at

    def carrier_for(self, method: str) -> str:
        if method == "standard":
            return self.rng.choices(("USPS", "UPS", "FedEx"), (45, 40, 15))[0]
        return self.rng.choice(("UPS", "FedEx"))

    def new_tracking(self, carrier: str) -> str:
        while True:
            number = _tracking_number(self.rng, carrier)
            if number not in self.tracking:
                self.tracking.add(number)
                return number

    # -- items
    def items(self, status: str, returnable_first: bool = False) -> list[dict[str, Any]]:
        rng = self.rng
        n = rng.choices((1, 2, 3), (55, 30, 15))[0]
        chosen: list[dict[str, Any]] = []
        tries = 0
        while len(chosen) < n and tries < 50:
            tries += 1
            category = rng.choices(list(_CATEGORY_WEIGHTS), list(_CATEGORY_WEIGHTS.values()))[0]
            pool = self.by_category[category]
            if status in ("pending", "processing"):  # nothing sold out can be waiting to ship
                pool = [p for p in pool if p["stock"] > 0]
            if not chosen and returnable_first:
                pool = [p for p in pool if _returnable(p)]
            pool = [p for p in pool if p["sku"] not in {c["sku"] for c in chosen}]
            if pool:
                chosen.append(rng.choice(pool))
        lines = []
        for p in chosen:
            qty = 1
            if p["price"] < 30 and p["category"] != "gift_card":
                qty = rng.choices((1, 2, 3), (70, 22, 8))[0]
            elif p["category"] not in ("shoes", "gift_card", "electronics"):
                qty = rng.choices((1, 2), (92, 8))[0]
            lines.append(_item(p, qty))
        return lines

    # -- orders by status (placed_at and shipment fields)
    def unshipped(self, max_age: timedelta) -> dict[str, Any]:
        age = timedelta(minutes=self.rng.randint(10, int(max_age.total_seconds() // 60)))
        return {"placed_at": _iso(self.now - age)}

    def cancelled(self) -> dict[str, Any]:
        age = timedelta(minutes=self.rng.randint(60, 118 * 24 * 60))
        return {"placed_at": _iso(self.now - age)}

    def _shipment(self, placed_at: datetime, pickup_at: datetime, expected: date, carrier: str,
                  events: list[tuple[datetime, str, str]], tracking: str | None = None,
                  delivered: date | None = None) -> dict[str, Any]:
        row: dict[str, Any] = {
            "placed_at": _iso(placed_at), "shipped_at": pickup_at.date().isoformat(),
            "expected_delivery": expected.isoformat(), "carrier": carrier,
            "tracking_number": tracking or self.new_tracking(carrier), "tracking_events": _events(events),
        }
        if delivered:
            row["delivered_at"] = delivered.isoformat()
        return row

    def shipped(self, carrier: str, method: str, route: list[str], region: str,
                tracking: str | None = None, pickup_day: date | None = None) -> dict[str, Any]:
        """Handed to the carrier, no scan after the pickup yet; expected delivery in the future."""
        rng, now = self.rng, self.now
        if pickup_day is None:
            pickup_day = self.today - timedelta(days=rng.choice((0, 1)))
        pickup_at = _at(pickup_day, rng, 15, 19.5)
        if pickup_at > now - timedelta(minutes=30):
            pickup_at -= timedelta(days=1)
        placed_at = pickup_at - timedelta(minutes=rng.randint(3 * 60, 28 * 60))
        expected = self._expected_future(pickup_at.date(), self._transit(method, region))
        events = _timeline(rng, carrier, route, self._label_at(placed_at, pickup_at), pickup_at, expected)[:2]
        return self._shipment(placed_at, pickup_at, expected, carrier, events, tracking)

    def _expected_future(self, pickup_day: date, transit: int) -> date:
        expected = _add_bd(pickup_day, transit)
        while expected <= self.today:
            expected = _add_bd(expected, 1)
        return expected

    def in_transit(self, carrier: str, method: str, route: list[str], region: str, tracking: str | None = None,
                   pickup_day: date | None = None, expected: date | None = None) -> dict[str, Any]:
        """Scanned on the way; the events stop before now, delivery is in the future."""
        rng, now = self.rng, self.now
        if pickup_day is None:
            pickup_day = _weekday_on_or_before(self.today - timedelta(days=rng.randint(1, 3)))
        pickup_at = _at(pickup_day, rng, 16, 19.5)
        placed_at = pickup_at - timedelta(minutes=rng.randint(2 * 60, 26 * 60))
        if expected is None:
            expected = self._expected_future(pickup_day, self._transit(method, region))
        plan = _timeline(rng, carrier, route, self._label_at(placed_at, pickup_at), pickup_at, expected)
        events = [e for e in plan[:-2] if e[0] <= now - timedelta(minutes=5)]
        if len(events) < 3:  # picked up yesterday evening: make sure the first scan after pickup is there
            first_hop = max(pickup_at + timedelta(minutes=30), min(plan[2][0], now - timedelta(minutes=5)))
            events.append((first_hop, plan[2][1], plan[2][2]))
        return self._shipment(placed_at, pickup_at, expected, carrier, events, tracking)

    def delayed(self, carrier: str, method: str, route: list[str], region: str, tracking: str | None = None,
                pickup_day: date | None = None, reason: str | None = None, keep: int | None = None) -> dict[str, Any]:
        """Missed its expected delivery (in the past); the last event is the carrier's "Delayed: ..."."""
        rng, now = self.rng, self.now
        transit = self._transit(method, region)
        if pickup_day is None:
            pickup_day = _weekday_on_or_before(self.today - timedelta(days=rng.randint(4, 12)))
        while _add_bd(pickup_day, transit) >= self.today:
            pickup_day -= timedelta(days=7)
        expected = _add_bd(pickup_day, transit)
        pickup_at = _at(pickup_day, rng, 16, 19.5)
        placed_at = pickup_at - timedelta(minutes=rng.randint(2 * 60, 26 * 60))
        plan = _timeline(rng, carrier, route, self._label_at(placed_at, pickup_at), pickup_at, expected)
        expected_start = datetime(expected.year, expected.month, expected.day)
        kept = [e for e in plan[:-2] if e[0] < expected_start]
        if keep is not None:
            kept = kept[:keep]
        elif len(kept) > 3 and rng.random() < 0.5:  # sometimes the parcel got stuck earlier on the route
            kept = kept[:rng.randint(3, len(kept))]
        last_at, last_loc, _ = kept[-1]
        latest = min(now - timedelta(minutes=30), expected_start + timedelta(hours=18))
        delay_at = last_at + timedelta(minutes=rng.randint(60, max(61, int((latest - last_at).total_seconds() // 60))))
        delay_at = min(delay_at, latest)
        events = [*kept, (delay_at, last_loc, reason or rng.choice(_DELAYS))]
        return self._shipment(placed_at, pickup_at, expected, carrier, events, tracking)

    def delivered(self, carrier: str, method: str, route: list[str], region: str, tracking: str | None = None,
                  placed_at: datetime | None = None, min_quiet: timedelta = timedelta(hours=2)) -> dict[str, Any]:
        """Delivered at least ``min_quiet`` before now; placed within the last 120 days."""
        rng = self.rng
        if placed_at is None:
            placed_at = self.now - timedelta(minutes=rng.randint(6 * 24 * 60, 110 * 24 * 60))
        while True:
            pickup_at = self._pickup_after(placed_at)
            expected = _add_bd(pickup_at.date(), self._transit(method, region))
            late = rng.choices((-1, 0, 1, 2), (8, 72, 15, 5))[0]
            delivered = _add_bd(expected, late) if late > 0 else expected
            if late < 0 and expected - timedelta(days=1) > pickup_at.date():
                delivered = expected - timedelta(days=1)
            plan = _timeline(rng, carrier, route, self._label_at(placed_at, pickup_at), pickup_at, delivered)
            if plan[-1][0] <= self.now - min_quiet:
                break
            placed_at -= timedelta(days=7)  # keeps weekdays; only happens for orders placed a few days ago
        return self._shipment(placed_at, pickup_at, expected, carrier, plan, tracking, delivered)


# ---- the generator -------------------------------------------------------------------------------
def _normalise_now(now: datetime | None) -> datetime:
    if now is None:
        return DEFAULT_NOW
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)  # naive UTC, like the database
    return now.replace(second=0, microsecond=0)


def _demo_entries(b: _Builder, by_sku: dict[str, dict[str, Any]]) -> tuple[list, list, list]:
    """The documented entries (module docstring). Independent of the seed: they use their own Random."""
    now, today = b.now, b.today
    sf, ny = _route("San Francisco", "CA", "west"), _route("New York", "NY", "northeast")
    customers = [
        {"id": "C0001", "name": "Ada Park", "email": "ada.park@example.com", "zip": "94110",
         "phone": "+1 415 555 0101", "address": "1250 Valencia St, San Francisco, CA 94110"},
        {"id": "C0002", "name": "Ben Okafor", "email": "ben.okafor@example.com", "zip": "10027",
         "phone": "+1 212 555 0102", "address": "412 W 124th St, Apt 3B, New York, NY 10027"},
    ]

    def items(*skus: str | tuple[str, int]) -> list[dict[str, Any]]:
        return [_item(by_sku[s], 1) if isinstance(s, str) else _item(by_sku[s[0]], s[1]) for s in skus]

    def order(oid: str, customer: str, status: str, lines: list[dict[str, Any]], payment: str, zip_code: str,
              note: str, **fields: Any) -> dict[str, Any]:
        return {"id": oid, "customer": customer, "status": status, **fields, "items": lines,
                "payment_method": payment, "shipping_zip": zip_code, "note": note}

    # SD-10001: delivered 10 days before now (placed so that UPS standard delivery lands on that day)
    delivered_day = today - timedelta(days=10)
    pickup_day = delivered_day
    for _ in range(3):
        pickup_day = _weekday_on_or_before(pickup_day - timedelta(days=1))
    pickup_at = datetime.combine(pickup_day, datetime.min.time()) + timedelta(hours=17, minutes=42)
    placed_at = pickup_at - timedelta(hours=8, minutes=25)
    plan = _timeline(b.rng, "UPS", sf, placed_at + timedelta(hours=2, minutes=10), pickup_at, delivered_day)
    sd10001 = {"placed_at": _iso(placed_at), "shipped_at": pickup_day.isoformat(),
               "expected_delivery": delivered_day.isoformat(), "delivered_at": delivered_day.isoformat(),
               "carrier": "UPS", "tracking_number": "1Z4F7E290312345678", "tracking_events": _events(plan)}
    # SD-10002: in transit with UPS, shipped 2+ days ago, expected 2 business days from today
    transit_pickup = _weekday_on_or_before(today - timedelta(days=2))
    sd10002 = b.in_transit("UPS", "standard", sf, "west", tracking="1Z4F7E290387654321",
                           pickup_day=transit_pickup, expected=_add_bd(today, 2))
    sd10004 = b.delayed("FedEx", "standard", sf, "west", tracking="794612203345",
                        pickup_day=_weekday_on_or_before(today - timedelta(days=6)),
                        reason="Delayed: severe weather in the area", keep=4)  # stuck after "Arrived" Sacramento
    sd10006 = b.shipped("USPS", "standard", ny, "northeast", tracking="9400111899223344556677",
                        pickup_day=today - timedelta(days=1))
    sd10008 = b.delivered("UPS", "standard", ny, "northeast", tracking="1Z4F7E290355501234",
                          placed_at=now - timedelta(days=45, hours=3, minutes=22))
    sd10008_lines = items("MCS-CHR-L", "BOT-WHT-L")
    return_at = datetime.fromisoformat(sd10008["delivered_at"]) + timedelta(days=6, hours=11, minutes=20)

    orders = [
        order("SD-10001", "C0001", "delivered", items("TRG-SLT-09"), "visa-4242", "94110", "Standard shipping",
              **sd10001),
        order("SD-10002", "C0001", "in_transit", items("NCH-BLK", "BNE-CHR"), "visa-4242", "94110",
              "Standard shipping", **sd10002),
        order("SD-10003", "C0001", "processing", items("MCS-OAT-M", ("ECM-CRM", 2)), "visa-4242", "94110",
              "Standard shipping", placed_at=_iso(now - timedelta(hours=5))),
        order("SD-10004", "C0001", "delayed", items("RRJ-BLU-M"), "visa-4242", "94110", "Standard shipping",
              **sd10004),
        order("SD-10005", "C0001", "pending", items("WEP-WHT", "MSS-STD"), "visa-4242", "94110",
              "Express shipping", placed_at=_iso(now - timedelta(minutes=40))),
        order("SD-10006", "C0002", "shipped", items("DPK-FOR", "HSK-L"), "mastercard-5555", "10027",
              "Standard shipping", **sd10006),
        order("SD-10007", "C0002", "cancelled", items("PKA-BLK-L"), "paypal", "10027",
              "Standard shipping. Cancelled at the customer's request before shipping.",
              placed_at=_iso(now - timedelta(days=20, hours=4, minutes=13))),
        order("SD-10008", "C0002", "returned", sd10008_lines, "mastercard-5555", "10027", "Standard shipping",
              **sd10008),
    ]
    returns = [{"id": "RMA-1001", "order": "SD-10008", "items": [{"sku": "MCS-CHR-L", "qty": 1}],
                "status": "refunded", "refund_amount": _total(sd10008_lines[:1]), "created_at": _iso(return_at),
                "reason": "Too large"}]
    return customers, orders, returns


def _allocate(rng: random.Random, customers: int, orders: int) -> list[int]:
    """Orders per customer: at least 1 when there are enough orders, at most 8, skewed like real shoppers."""
    counts = [0] * customers
    for i in (rng.sample(range(customers), orders) if orders < customers else range(customers)):
        counts[i] = 1
    weights = [rng.lognormvariate(0, 0.8) for _ in range(customers)]
    open_: list[int] = []
    cumulative: list[float] = []
    for _ in range(orders - sum(counts)):
        if not open_:
            # the same draw as choices(open_, weights): cumulative weights change only when a customer fills up
            open_ = [i for i in range(customers) if counts[i] < MAX_ORDERS_PER_CUSTOMER]
            cumulative = list(itertools.accumulate(weights[i] for i in open_))
        picked = rng.choices(open_, cum_weights=cumulative)[0]
        counts[picked] += 1
        if counts[picked] >= MAX_ORDERS_PER_CUSTOMER:
            open_ = []
    return counts


def _statuses(rng: random.Random, n: int) -> list[str]:
    """Exact quotas per status (every status present once n >= 8), in random order."""
    total = sum(_STATUS_WEIGHTS.values())
    floor = 1 if n >= len(_STATUS_WEIGHTS) else 0
    quota = {s: max(floor, round(n * w / total)) for s, w in _STATUS_WEIGHTS.items()}
    while sum(quota.values()) > n:
        largest = max(quota, key=lambda s: quota[s])
        quota[largest] -= 1
    quota["delivered"] += n - sum(quota.values())
    out = [s for s in ORDER_STATUSES for _ in range(quota[s])]
    rng.shuffle(out)
    return out


def demo_fixtures(seed: int = 7, customers: int = 120, orders: int = 400,
                  now: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
    """The demo shop as fixture rows; see the module docstring for the fixed demo entries."""
    if customers < 2 or orders < 8:
        raise ValueError("the demo shop needs at least 2 customers and 8 orders (its fixed demo entries)")
    if customers > MAX_CUSTOMERS:
        raise ValueError(f"the demo shop has at most {MAX_CUSTOMERS} customers (one per first and last name pair)")
    if orders - 8 > (customers - 2) * MAX_ORDERS_PER_CUSTOMER:
        raise ValueError(f"{orders} orders is more than {MAX_ORDERS_PER_CUSTOMER} per customer "
                         f"for {customers} customers")
    now = _normalise_now(now)
    products = catalogue()
    by_sku = {p["sku"]: p for p in products}

    demo_customers, demo_orders, demo_returns = _demo_entries(_Builder(random.Random(1001), now, products), by_sku)
    rng = random.Random(seed)
    b = _Builder(rng, now, products)
    b.tracking.update(o["tracking_number"] for o in demo_orders if o.get("tracking_number"))

    # customers
    used_names = {c["name"] for c in demo_customers}
    used_emails = {c["email"] for c in demo_customers}
    used_phones = {c["phone"] for c in demo_customers}
    fictional_used = Counter(p.split()[1] for p in used_phones)  # 555-0100..0199 taken, per area code
    cust_rows: list[dict[str, Any]] = []
    cust_info: dict[str, tuple[str, str, str, str]] = {}  # id -> (city, state, region, preferred payment)
    zips_of: dict[str, str] = {}
    for n in range(3, customers + 1):
        while True:
            first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
            if f"{first} {last}" not in used_names:
                break
        name = f"{first} {last}"
        used_names.add(name)
        f, l_ = _email_local(first), _email_local(last)
        local = rng.choices((f"{f}.{l_}", f"{f}{l_}", f"{f}_{l_}", f"{f[0]}{l_}", f"{f}.{l_}{rng.randint(1, 99)}"),
                            (70, 10, 5, 10, 5))[0]
        domain = rng.choices(("example.com", "example.org"), (80, 20))[0]
        email, k = f"{local}@{domain}", 2
        while email in used_emails:
            email, k = f"{local}{k}@{domain}", k + 1
        used_emails.add(email)
        city, state, zips, area, region = rng.choice(_CITIES)
        zip_code = rng.choice(zips)
        while True:
            if fictional_used[area] < 100:
                phone = f"+1 {area} 555 01{rng.randint(0, 99):02d}"
            else:  # the area's 100 fictional numbers are taken (big shops): other 555 numbers
                phone = f"+1 {area} 555 {rng.randint(200, 9999):04d}"
            if phone not in used_phones:
                break
        used_phones.add(phone)
        fictional_used[area] += phone.split()[3].startswith("01")
        house = rng.choice(((2, 99), (100, 999), (100, 999), (1000, 4999), (1000, 4999)))
        street = f"{rng.randint(*house)} {rng.choice(_STREETS)}"
        if rng.random() < 0.25:
            street += f", Apt {rng.randint(1, 24)}{rng.choice('ABCD')}"
        cid = f"C{n:04d}"
        payment = rng.choices(
            (f"visa-{rng.randint(0, 9999):04d}", f"mastercard-{rng.randint(0, 9999):04d}",
             f"amex-{rng.randint(0, 9999):04d}", f"discover-{rng.randint(0, 9999):04d}", "paypal", "apple-pay",
             "google-pay"), (34, 22, 10, 4, 14, 11, 5))[0]
        cust_rows.append({"id": cid, "name": name, "email": email, "zip": zip_code, "phone": phone,
                          "address": f"{street}, {city}, {state} {zip_code}"})
        cust_info[cid] = (city, state, region, payment)
        zips_of[cid] = zip_code

    # orders: customer slots x status quotas, numbered by placed_at
    counts = _allocate(rng, customers - 2, orders - 8)
    slots = [c["id"] for c, k in zip(cust_rows, counts, strict=True) for _ in range(k)]
    rng.shuffle(slots)
    generated: list[dict[str, Any]] = []
    pending_returns: list[tuple[dict[str, Any], datetime]] = []
    for cid, status in zip(slots, _statuses(rng, len(slots)), strict=True):
        city, state, region, preferred = cust_info[cid]
        zip_code = zips_of[cid]
        method = rng.choices(list(_METHODS), list(_METHODS.values()))[0]
        payment = preferred if rng.random() < 0.8 else rng.choice(("paypal", "apple-pay", "google-pay",
                                                                      "visa-4242", "mastercard-5555"))
        note = _METHOD_NOTE[method]
        route = _route(city, state, region)
        carrier = b.carrier_for(method)
        lines = b.items(status, returnable_first=status == "returned")
        if status in ("pending", "processing"):
            fields = b.unshipped(timedelta(days=2 if status == "pending" else 3))
        elif status == "cancelled":
            fields = b.cancelled()
            note += ". " + rng.choice(("Cancelled at the customer's request before shipping.",
                                       "Cancelled: the payment could not be authorised.",
                                       "Cancelled at the customer's request (ordered twice)."))
        elif status == "shipped":
            fields = b.shipped(carrier, method, route, region)
        elif status == "in_transit":
            fields = b.in_transit(carrier, method, route, region)
        elif status == "delayed":
            fields = b.delayed(carrier, method, route, region)
        else:  # delivered, returned
            quiet = timedelta(days=16) if status == "returned" else timedelta(hours=2)
            fields = b.delivered(carrier, method, route, region, min_quiet=quiet)
        row = {"id": "", "customer": cid, "status": status, **fields, "items": lines, "payment_method": payment,
               "shipping_zip": zip_code, "note": note}
        generated.append(row)
        if status == "returned":
            delivered_day = date.fromisoformat(row["delivered_at"])
            created = datetime.combine(delivered_day, datetime.min.time()) + timedelta(
                days=rng.randint(1, 12), minutes=rng.randint(8 * 60, 22 * 60))
            pending_returns.append((row, min(created, now - timedelta(days=3))))

    generated.sort(key=lambda o: (o["placed_at"], o["customer"]))
    for i, row in enumerate(generated):
        row["id"] = f"SD-{10009 + i}"

    # returns for the returned orders, numbered in order id order
    return_rows = list(demo_returns)
    for row, created in sorted(pending_returns, key=lambda rc: int(rc[0]["id"][3:])):
        keep = [it for it in row["items"] if _returnable(it)]
        back = [keep[0]] + [it for it in keep[1:] if rng.random() < 0.4]
        ret_items = [{"sku": it["sku"], "qty": it["qty"]} for it in back]
        fit = back[0]["category"] in _SIZED
        reason = rng.choice(_RETURN_REASONS_FIT + _RETURN_REASONS if fit else _RETURN_REASONS)
        return_rows.append({"id": f"RMA-{1000 + len(return_rows) + 1}", "order": row["id"], "items": ret_items,
                            "status": "refunded", "refund_amount": _total(back), "created_at": _iso(created),
                            "reason": reason})

    return {"customers": demo_customers + cust_rows, "products": products, "orders": demo_orders + generated,
            "returns": return_rows}


# ---- loading --------------------------------------------------------------------------------------
_SHOP_TABLES = (ReturnItem, Return, TrackingEvent, Shipment, Payment, OrderItem, Order, Customer, Product)


def seed_database(engine: Engine, seed: int = 7, customers: int = 120, orders: int = 400,
                  now: datetime | None = None, replace: bool = False) -> dict[str, int]:
    """Load the demo shop; returns rows written per table.

    Refuses when the shop tables already hold rows, unless ``replace=True``: then the shop's rows
    (not sessions, turns, tickets) are deleted and the demo shop loaded in the same transaction, so a
    failed re-seed leaves the old data in place.
    """
    fixtures = demo_fixtures(seed=seed, customers=customers, orders=orders, now=now)
    validate(fixtures, "demo shop")
    with engine.begin() as conn:
        existing = {t.__tablename__: conn.scalar(select(func.count()).select_from(t))
                    for t in (Order, Customer, Product)}
        if any(existing.values()) and not replace:
            found = ", ".join(f"{n} {t}" for t, n in existing.items() if n)
            raise ValueError(f"the database already has shop data ({found}); "
                             "seed an empty database, or replace=True (`shopdesk seed --replace`) deletes it first")
        if replace:
            for table in _SHOP_TABLES:
                conn.execute(delete(table))
        # a Session bound to this connection joins its transaction: the deletes and the load commit together
        return load_fixtures(conn, fixtures, source="demo shop")  # type: ignore[arg-type]
