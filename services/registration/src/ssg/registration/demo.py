"""Demo data for the local stack: generated organizations and experts, the same for the same seed.

Everything here is invented: names are composed from word lists, websites and emails live under
the reserved ``example.org`` domain, descriptions are templates. ``generate`` returns plain
records (drafts that ``validate_organization`` / ``validate_expert`` accept, plus what the seeder
needs: a stable key, the status to reach, a parent or affiliation by key); ``*_request`` turns a
record into the RegisterOrganization / RegisterExpert request the seeder sends.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ssg.contracts.common.v1 import geography_pb2, organization_type_pb2
from ssg.contracts.registration.v1 import expert_pb2, organization_pb2
from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.registration.domain.model import (
    ExpertVisibility,
    OrganizationStatus,
    OrganizationType,
    Region,
)
from ssg.registration.domain.validation import ExpertDraft, OrganizationDraft

DEFAULT_SEED = 20_250
DEFAULT_ORGANIZATIONS = 320
DEFAULT_EXPERTS = 60
EXAMPLE_DOMAIN = "example.org"  # reserved for documentation (RFC 2606): never a real site

# Which regional instance would review an organization headquartered in a region (the local
# stack runs one instance, "global"; a regional deployment can seed only its own share).
INSTANCE_OF_REGION: dict[Region, str] = {
    Region.AFRICA: "africa",
    Region.ARAB_STATES: "arab-states-europe-cis",
    Region.EUROPE_CENTRAL_ASIA: "arab-states-europe-cis",
    Region.ASIA_PACIFIC: "asia-pacific",
    Region.LATIN_AMERICA_CARIBBEAN: "latin-america-caribbean",
    Region.NORTH_AMERICA: "global",
    Region.WESTERN_EUROPE: "global",
}
INSTANCES: tuple[str, ...] = tuple(sorted(set(INSTANCE_OF_REGION.values())))

# (ISO 3166-1 alpha-3, adjective, main working language) per region. The platform is about
# South-South cooperation, so the South carries most of the weight below.
COUNTRIES: dict[Region, tuple[tuple[str, str, str], ...]] = {
    Region.AFRICA: (
        ("KEN", "Kenyan", "sw"),
        ("NGA", "Nigerian", "en"),
        ("GHA", "Ghanaian", "en"),
        ("ETH", "Ethiopian", "am"),
        ("SEN", "Senegalese", "fr"),
        ("ZAF", "South African", "en"),
        ("RWA", "Rwandan", "rw"),
        ("TZA", "Tanzanian", "sw"),
        ("UGA", "Ugandan", "en"),
        ("CIV", "Ivorian", "fr"),
        ("CMR", "Cameroonian", "fr"),
        ("MOZ", "Mozambican", "pt"),
        ("ZMB", "Zambian", "en"),
        ("BFA", "Burkinabe", "fr"),
        ("MLI", "Malian", "fr"),
        ("BEN", "Beninese", "fr"),
        ("MWI", "Malawian", "en"),
        ("BWA", "Botswanan", "en"),
        ("NAM", "Namibian", "en"),
        ("AGO", "Angolan", "pt"),
        ("MDG", "Malagasy", "mg"),
        ("CPV", "Cabo Verdean", "pt"),
    ),
    Region.ARAB_STATES: (
        ("EGY", "Egyptian", "ar"),
        ("MAR", "Moroccan", "ar"),
        ("TUN", "Tunisian", "ar"),
        ("JOR", "Jordanian", "ar"),
        ("LBN", "Lebanese", "ar"),
        ("DZA", "Algerian", "ar"),
        ("IRQ", "Iraqi", "ar"),
        ("OMN", "Omani", "ar"),
        ("QAT", "Qatari", "ar"),
        ("SDN", "Sudanese", "ar"),
        ("ARE", "Emirati", "ar"),
        ("SAU", "Saudi", "ar"),
        ("KWT", "Kuwaiti", "ar"),
        ("MRT", "Mauritanian", "ar"),
        ("DJI", "Djiboutian", "fr"),
        ("YEM", "Yemeni", "ar"),
    ),
    Region.ASIA_PACIFIC: (
        ("IND", "Indian", "hi"),
        ("CHN", "Chinese", "zh"),
        ("IDN", "Indonesian", "id"),
        ("VNM", "Vietnamese", "vi"),
        ("PHL", "Philippine", "tl"),
        ("THA", "Thai", "th"),
        ("BGD", "Bangladeshi", "bn"),
        ("PAK", "Pakistani", "ur"),
        ("NPL", "Nepali", "ne"),
        ("LKA", "Sri Lankan", "si"),
        ("MYS", "Malaysian", "ms"),
        ("KHM", "Cambodian", "km"),
        ("LAO", "Lao", "lo"),
        ("MNG", "Mongolian", "mn"),
        ("FJI", "Fijian", "en"),
        ("PNG", "Papua New Guinean", "en"),
        ("WSM", "Samoan", "sm"),
        ("TLS", "Timorese", "pt"),
        ("BTN", "Bhutanese", "dz"),
    ),
    Region.EUROPE_CENTRAL_ASIA: (
        ("KAZ", "Kazakh", "kk"),
        ("UZB", "Uzbek", "uz"),
        ("KGZ", "Kyrgyz", "ky"),
        ("TJK", "Tajik", "tg"),
        ("TKM", "Turkmen", "tk"),
        ("TUR", "Turkish", "tr"),
        ("AZE", "Azerbaijani", "az"),
        ("GEO", "Georgian", "ka"),
        ("ARM", "Armenian", "hy"),
        ("MDA", "Moldovan", "ro"),
        ("SRB", "Serbian", "sr"),
        ("MKD", "North Macedonian", "mk"),
        ("ALB", "Albanian", "sq"),
    ),
    Region.LATIN_AMERICA_CARIBBEAN: (
        ("BRA", "Brazilian", "pt"),
        ("MEX", "Mexican", "es"),
        ("ARG", "Argentine", "es"),
        ("CHL", "Chilean", "es"),
        ("COL", "Colombian", "es"),
        ("PER", "Peruvian", "es"),
        ("ECU", "Ecuadorian", "es"),
        ("BOL", "Bolivian", "es"),
        ("URY", "Uruguayan", "es"),
        ("PRY", "Paraguayan", "es"),
        ("CUB", "Cuban", "es"),
        ("DOM", "Dominican", "es"),
        ("JAM", "Jamaican", "en"),
        ("GTM", "Guatemalan", "es"),
        ("HND", "Honduran", "es"),
        ("CRI", "Costa Rican", "es"),
        ("PAN", "Panamanian", "es"),
        ("HTI", "Haitian", "fr"),
        ("TTO", "Trinidadian", "en"),
        ("BRB", "Barbadian", "en"),
        ("GUY", "Guyanese", "en"),
    ),
    Region.NORTH_AMERICA: (
        ("USA", "American", "en"),
        ("CAN", "Canadian", "en"),
    ),
    Region.WESTERN_EUROPE: (
        ("NOR", "Norwegian", "no"),
        ("DEU", "German", "de"),
        ("FRA", "French", "fr"),
        ("ESP", "Spanish", "es"),
        ("ITA", "Italian", "it"),
        ("PRT", "Portuguese", "pt"),
        ("NLD", "Dutch", "nl"),
        ("CHE", "Swiss", "de"),
        ("SWE", "Swedish", "sv"),
        ("DNK", "Danish", "da"),
    ),
}
REGION_WEIGHTS: dict[Region, float] = {
    Region.AFRICA: 5,
    Region.ARAB_STATES: 3,
    Region.ASIA_PACIFIC: 5,
    Region.EUROPE_CENTRAL_ASIA: 2,
    Region.LATIN_AMERICA_CARIBBEAN: 4,
    Region.NORTH_AMERICA: 0.5,
    Region.WESTERN_EUROPE: 1,
}
REGION_LABELS: dict[Region, str] = {
    Region.AFRICA: "African",
    Region.ARAB_STATES: "Arab",
    Region.ASIA_PACIFIC: "Asia-Pacific",
    Region.EUROPE_CENTRAL_ASIA: "Eurasian",
    Region.LATIN_AMERICA_CARIBBEAN: "Latin American and Caribbean",
    Region.NORTH_AMERICA: "North American",
    Region.WESTERN_EUROPE: "European",
}
# Languages a region's bodies often work in besides the country's own.
REGION_LANGUAGES: dict[Region, tuple[str, ...]] = {
    Region.AFRICA: ("en", "fr", "pt", "ar"),
    Region.ARAB_STATES: ("en", "fr"),
    Region.ASIA_PACIFIC: ("en", "zh"),
    Region.EUROPE_CENTRAL_ASIA: ("ru", "en"),
    Region.LATIN_AMERICA_CARIBBEAN: ("es", "pt", "en"),
    Region.NORTH_AMERICA: ("en", "fr", "es"),
    Region.WESTERN_EUROPE: ("en", "fr"),
}

# Topics and the SDGs they serve: the backbone of names, descriptions and SDG focus.
TOPICS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("Climate Resilience", (13, 11)),
    ("Food Security", (2, 1)),
    ("Public Health", (3,)),
    ("Renewable Energy", (7, 13)),
    ("Water and Sanitation", (6, 3)),
    ("Education Innovation", (4,)),
    ("Gender Equality", (5, 10)),
    ("Digital Inclusion", (9, 10, 4)),
    ("Sustainable Agriculture", (2, 15)),
    ("Ocean Governance", (14,)),
    ("Urban Development", (11,)),
    ("Trade and Investment", (8, 17)),
    ("Social Protection", (1, 10)),
    ("Forest Conservation", (15, 13)),
    ("Circular Economy", (12,)),
    ("Peacebuilding", (16,)),
    ("Youth Employment", (8, 4)),
    ("Disaster Risk Reduction", (11, 13)),
    ("Migration and Mobility", (10, 8)),
    ("Financial Inclusion", (1, 8)),
    ("Health Systems", (3,)),
    ("Development Data", (17, 16)),
    ("Maternal and Child Health", (3, 5)),
    ("Small-Scale Fisheries", (14, 2)),
    ("Biodiversity", (15, 14)),
    ("Rural Livelihoods", (1, 2, 8)),
    ("Infrastructure", (9, 11)),
    ("Public Governance", (16,)),
    ("Nutrition", (2, 3)),
    ("Vocational Skills", (4, 8)),
    ("Clean Cooking", (7, 3)),
    ("Sustainable Tourism", (8, 12, 14)),
)
PORTFOLIOS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("Health", (3,)),
    ("Agriculture and Rural Development", (2, 1)),
    ("Education", (4,)),
    ("Energy", (7,)),
    ("Water Resources", (6,)),
    ("Environment and Climate Change", (13, 15)),
    ("Planning and Development", (17, 8)),
    ("Foreign Affairs and International Cooperation", (17,)),
    ("Social Development", (1, 10)),
    ("Digital Economy", (9,)),
    ("Fisheries and Marine Resources", (14,)),
    ("Women and Family Affairs", (5,)),
    ("Labour and Employment", (8,)),
    ("Trade and Industry", (9, 8)),
)
BRAND_WORDS = (
    "Sunridge", "Blue Delta", "Greenfield", "Baobab", "Kilima", "Andes Light", "Monsoon",
    "Coral Bay", "Sahel", "Pampa", "Mekong", "Savanna", "Highland", "Red Earth", "Lakeside",
    "Silk Route", "Oasis", "Cedar", "Tidewater", "Rainbird",
)  # fmt: skip
BUSINESS_LINES = (
    ("Solar Systems", (7, 13)),
    ("AgriTech", (2, 9)),
    ("Water Technologies", (6,)),
    ("Logistics", (9, 8)),
    ("Microfinance", (1, 8)),
    ("Health Diagnostics", (3, 9)),
    ("Recycling", (12,)),
    ("Learning Platforms", (4, 9)),
    ("Cold Chain", (2, 12)),
    ("Green Construction", (11, 9)),
)
COMPANY_SUFFIXES = ("Ltd", "PLC", "S.A.", "Ltda.", "Group", "Cooperative", "Enterprises")
FAMILY_NAMES = (
    "Adeyemi", "Mensah", "Okafor", "Haddad", "Rahman", "Nguyen", "Santos", "Mendoza", "Kariuki",
    "Diallo", "Banda", "Fernandes", "Castillo", "Sharma", "Tanaka", "Petrova", "Alvarez",
    "Ndlovu", "Hassan", "Kaur", "Suleiman", "Moreno", "Chowdhury", "Quispe", "Traore", "Osei",
    "Abdullah", "Lim", "Rojas", "Nasser", "Kamau", "Baptiste", "Ibrahim", "Silva", "Wanjiru",
)  # fmt: skip
GIVEN_NAMES = (
    "Amina", "Kwame", "Lucia", "Rahul", "Fatima", "Tomas", "Mei", "Chidi", "Ana", "Omar",
    "Priya", "Joao", "Leila", "Diego", "Nadia", "Samuel", "Aisha", "Mateo", "Grace", "Yusuf",
    "Ines", "Arjun", "Zainab", "Carlos", "Nomsa", "Farid", "Isabel", "Kofi", "Hana", "Pedro",
)  # fmt: skip
EXPERTISE: dict[str, tuple[str, ...]] = {
    "Climate Resilience": ("climate adaptation planning", "early warning systems"),
    "Food Security": ("food systems", "grain storage", "school feeding programmes"),
    "Public Health": ("disease surveillance", "community health workers"),
    "Renewable Energy": ("solar mini-grids", "energy access policy", "productive use of energy"),
    "Water and Sanitation": ("rural water supply", "sanitation marketing", "water governance"),
    "Education Innovation": ("teacher training", "remote learning", "curriculum reform"),
    "Gender Equality": ("gender budgeting", "women's economic empowerment"),
    "Digital Inclusion": ("digital public infrastructure", "mobile money", "open data"),
    "Sustainable Agriculture": ("agroecology", "soil health", "irrigation"),
    "Ocean Governance": ("marine spatial planning", "blue economy"),
    "Urban Development": ("informal settlement upgrading", "urban mobility"),
    "Trade and Investment": ("regional value chains", "trade facilitation"),
    "Social Protection": ("cash transfers", "social registries"),
    "Forest Conservation": ("community forestry", "forest monitoring"),
    "Circular Economy": ("waste management", "extended producer responsibility"),
    "Peacebuilding": ("conflict mediation", "transitional justice"),
}
STATUS_REASONS = {
    OrganizationStatus.REJECTED: (
        "Registration documents could not be confirmed with the national registry.",
        "The organization appears to be a duplicate of an existing registration.",
        "The submitted contact details did not respond to verification requests.",
    ),
    OrganizationStatus.SUSPENDED: (
        "Contact details bounced during the annual check; awaiting an update.",
        "Registration certificate expired; suspended until a renewed one is provided.",
        "Under review after a complaint about misuse of the platform.",
    ),
}
EVIDENCE_NOTES = (
    "Checked the national registry entry and the official website.",
    "Confirmed by the country office by phone.",
    "Registration certificate and statutes reviewed.",
)
ACTIVITIES = (
    "runs field programmes with local partners",
    "advises public institutions and trains their staff",
    "collects evidence on what works and publishes open guidance",
    "convenes peers from several countries to exchange practical experience",
    "finances and accompanies community-led initiatives",
    "builds tools and services that partners adapt to their context",
)
SHARING = (
    "It documents its solutions so that partners in other countries can adapt them.",
    "It welcomes exchanges with peers facing similar challenges elsewhere in the Global South.",
    "It offers study visits, mentoring and technical advice to partner organizations.",
    "It is looking for partners to scale up approaches that have proved themselves locally.",
)


@dataclass(frozen=True)
class DemoOrganization:
    """One generated organization and the state the seeder should bring it to."""

    key: str  # stable across runs of the same seed: the seeder's request id
    draft: OrganizationDraft
    home_instance: str  # the instance whose reviewers would handle it
    target_status: OrganizationStatus  # VERIFIED, PENDING, REJECTED or SUSPENDED
    status_reason: str = ""
    evidence_note: str = ""
    parent_key: str = ""  # registered first; its id becomes parent_organization_id
    duplicate_of: str = ""  # key of the organization this one deliberately resembles
    admin_subject: str = ""  # who registers it (and becomes its first admin)


@dataclass(frozen=True)
class DemoExpert:
    """One generated expert profile."""

    key: str
    draft: ExpertDraft
    affiliation_key: str = ""  # a DemoOrganization key; its id becomes the affiliation id
    owner_subject: str = ""


@dataclass(frozen=True)
class DemoData:
    """Everything the seeder registers, parents and originals before what refers to them."""

    seed: int
    organizations: tuple[DemoOrganization, ...]
    experts: tuple[DemoExpert, ...]

    def organization(self, key: str) -> DemoOrganization:
        """The organization with this key; KeyError if none."""
        for org in self.organizations:
            if org.key == key:
                return org
        raise KeyError(key)


def region_of(country: str) -> Region:
    """The region a demo country belongs to; KeyError for a country the lists do not hold."""
    for region, entries in COUNTRIES.items():
        if any(code == country for code, _, _ in entries):
            return region
    raise KeyError(country)


def acronym_of(name: str, max_length: int = 10) -> str:
    """Initials of the significant words, e.g. 'Kenyan Institute for Climate Policy' -> 'KICP'."""
    small = {"of", "for", "and", "the", "on", "in", "de", "la", "&"}
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", name)
    return "".join(w[0].upper() for w in words if w.lower() not in small)[:max_length]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")


class _Generator:
    """Composes organizations from the word lists with one random source (the seed)."""

    def __init__(self, seed: int, organizations: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        # Keys name the data set: another seed or size is another set, never a conflicting
        # replay of the same request ids with different content.
        self.prefix = f"demo-s{seed}-n{organizations}"
        self.names: set[str] = set()
        self.hosts: set[str] = set()
        self.focus = ""

    def country(self, region: Region) -> tuple[str, str, str]:
        return self.rng.choice(COUNTRIES[region])

    def host(self, base: str) -> str:
        """A unique host under the example domain (a real domain is never generated)."""
        stem = _slug(base) or "org"
        host, n = f"{stem}.{EXAMPLE_DOMAIN}", 2
        while host in self.hosts:
            host, n = f"{stem}-{n}.{EXAMPLE_DOMAIN}", n + 1
        self.hosts.add(host)
        return host

    def name(
        self, org_type: OrganizationType, region: Region
    ) -> tuple[str, str, tuple[int, ...], str]:
        """(name, HQ country, SDGs implied by the name, focus) for a new, unused name."""
        for _ in range(200):
            code, adjective, _ = self.country(region)
            name, sdgs = self._compose(org_type, region, adjective)
            if name.casefold() not in self.names:
                self.names.add(name.casefold())
                return name, code, sdgs, self.focus
        raise RuntimeError(f"word lists too small for {org_type} in {region}")

    def _compose(
        self, org_type: OrganizationType, region: Region, adjective: str
    ) -> tuple[str, tuple[int, ...]]:
        rng = self.rng
        topic, sdgs = rng.choice(TOPICS)
        self.focus = topic  # what the description says it works on
        area = REGION_LABELS[region]
        match org_type:
            case OrganizationType.GOVERNMENT:
                portfolio, psdgs = rng.choice(PORTFOLIOS)
                self.focus = portfolio
                return rng.choice(
                    (
                        (f"{adjective} Ministry of {portfolio}", psdgs),
                        (f"{adjective} Agency for International Cooperation", (17,)),
                        (f"{adjective} National {topic} Authority", sdgs),
                        (f"{adjective} Directorate of {portfolio}", psdgs),
                    )
                )
            case OrganizationType.UN_ENTITY:
                return rng.choice(
                    (
                        (f"United Nations {topic} Office for {area} Countries", sdgs),
                        (f"UN {topic} Programme, {adjective} Country Office", sdgs),
                        (f"United Nations {area} Centre for {topic}", sdgs),
                    )
                )
            case OrganizationType.INTERGOVERNMENTAL:
                return rng.choice(
                    (
                        (f"{area} Commission on {topic}", sdgs),
                        (f"Intergovernmental Authority for {topic} in {area} States", sdgs),
                        (f"{area} Council of Ministers for {topic}", (*sdgs, 17)),
                    )
                )
            case OrganizationType.NGO:
                return rng.choice(
                    (
                        (f"{adjective} Alliance for {topic}", sdgs),
                        (f"{topic} Action Network ({adjective})", sdgs),
                        (f"{adjective} Women for {topic}", (*sdgs, 5)),
                        (f"Community {topic} Initiative of {adjective} Youth", (*sdgs, 4)),
                    )
                )
            case OrganizationType.THINK_TANK:
                return rng.choice(
                    (
                        (f"{adjective} Institute for {topic} Policy", sdgs),
                        (f"Centre for {topic} Studies, {adjective} Policy Forum", sdgs),
                        (f"{adjective} Economic Research Council on {topic}", (*sdgs, 8)),
                    )
                )
            case OrganizationType.ACADEMIA:
                return rng.choice(
                    (
                        (f"{adjective} University of Science and Technology", (4, 9)),
                        (f"School of {topic}, {adjective} National University", (*sdgs, 4)),
                        (f"{adjective} College of Agriculture and {topic}", (2, 4, *sdgs)),
                        (f"{adjective} Polytechnic Institute of {topic}", (*sdgs, 4)),
                    )
                )
            case OrganizationType.PRIVATE_SECTOR:
                line, lsdgs = rng.choice(BUSINESS_LINES)
                self.focus = line
                brand, suffix = rng.choice(BRAND_WORDS), rng.choice(COMPANY_SUFFIXES)
                return f"{brand} {line} {suffix}", lsdgs
            case OrganizationType.FOUNDATION:
                family = rng.choice(FAMILY_NAMES)
                return rng.choice(
                    (
                        (f"{family} Foundation for {topic}", sdgs),
                        (f"{adjective} Community Foundation for {topic}", sdgs),
                        (f"{family} Family Trust for {topic}", sdgs),
                    )
                )
            case OrganizationType.DEVELOPMENT_BANK:
                return rng.choice(
                    (
                        (f"{adjective} Development Bank", (8, 9, 17)),
                        (f"{area} Bank for {topic} Investment", (*sdgs, 17)),
                        (f"{adjective} {topic} Finance Corporation", (*sdgs, 8)),
                    )
                )
            case OrganizationType.SOUTH_SOUTH_NETWORK:
                return rng.choice(
                    (
                        (f"{area} Network for South-South Cooperation on {topic}", (*sdgs, 17)),
                        (f"South-South {topic} Exchange Platform ({adjective} Hub)", (*sdgs, 17)),
                        (f"Global South {topic} Alliance, {adjective} Chapter", (*sdgs, 17)),
                        (f"{area} Peer Learning Network on {topic}", (*sdgs, 17)),
                    )
                )
        raise AssertionError(org_type)  # every type is matched above

    def organization(
        self, index: int, org_type: OrganizationType, region: Region
    ) -> DemoOrganization:
        rng = self.rng
        name, hq, name_sdgs, focus = self.name(org_type, region)
        _, _, language = next(e for e in COUNTRIES[region] if e[0] == hq)
        wide = org_type in {
            OrganizationType.UN_ENTITY,
            OrganizationType.INTERGOVERNMENTAL,
            OrganizationType.SOUTH_SOUTH_NETWORK,
            OrganizationType.DEVELOPMENT_BANK,
        }
        operating = [hq]
        for _ in range(rng.randint(1, 8) if wide else rng.randint(0, 3)):
            # Wide bodies reach beyond their region now and then; others stay near home.
            other_region = rng.choice(list(COUNTRIES)) if wide and rng.random() < 0.3 else region
            code = self.country(other_region)[0]
            if code not in operating:
                operating.append(code)
        regions = list(dict.fromkeys(region_of(code) for code in operating))
        sdgs = sorted(set(name_sdgs) | ({rng.randint(1, 17)} if rng.random() < 0.4 else set()))
        languages = list(dict.fromkeys([language, *rng.sample(REGION_LANGUAGES[region], k=1)]))
        acronym = acronym_of(name) if len(acronym_of(name)) >= 2 else ""
        host = self.host(f"{acronym or name}-{hq}")
        description = (
            f"{name} is a {_TYPE_LABELS[org_type]} based in {_country_label(hq)} that "
            f"{rng.choice(ACTIVITIES)}, with a focus on {focus.lower()}. "
            f"{rng.choice(SHARING)}"
        )
        draft = OrganizationDraft(
            name=name,
            acronym=acronym,
            type=org_type.value,
            headquarters_country=hq,
            operating_countries=tuple(operating),
            regions=tuple(r.value for r in regions),
            sdgs=tuple(sdgs),
            website=f"https://www.{host}",
            contact_email=f"{rng.choice(('info', 'contact', 'partnerships', 'office'))}@{host}",
            description=description,
            languages=tuple(languages),
        )
        status = rng.choices(
            (
                OrganizationStatus.VERIFIED,
                OrganizationStatus.PENDING,
                OrganizationStatus.REJECTED,
                OrganizationStatus.SUSPENDED,
            ),
            weights=(76, 14, 5, 5),
        )[0]
        return DemoOrganization(
            key=f"{self.prefix}-org-{index:04d}",
            draft=draft,
            home_instance="global" if wide and len(regions) > 1 else INSTANCE_OF_REGION[region],
            target_status=status,
            status_reason=rng.choice(STATUS_REASONS.get(status, ("",))),
            evidence_note=rng.choice(EVIDENCE_NOTES),
            admin_subject=f"demo-admin-{index:04d}",
        )


_TYPE_LABELS: dict[OrganizationType, str] = {
    OrganizationType.GOVERNMENT: "government body",
    OrganizationType.UN_ENTITY: "United Nations office",
    OrganizationType.INTERGOVERNMENTAL: "intergovernmental body",
    OrganizationType.NGO: "civil society organization",
    OrganizationType.THINK_TANK: "policy research institute",
    OrganizationType.ACADEMIA: "university",
    OrganizationType.PRIVATE_SECTOR: "company",
    OrganizationType.FOUNDATION: "foundation",
    OrganizationType.DEVELOPMENT_BANK: "development finance institution",
    OrganizationType.SOUTH_SOUTH_NETWORK: "South-South cooperation network",
}


def _country_label(alpha3: str) -> str:
    from ssg.platform.reference.geography import country_name

    # pycountry's formal names read "Tanzania, United Republic of": keep the part before ','.
    return country_name(alpha3).split(",")[0]


def _near_duplicate(
    gen: _Generator, original: DemoOrganization, index: int, how: str
) -> DemoOrganization:
    """A second registration of original, as people really send them: the duplicate guard's job."""
    d = original.draft
    if how == "reordered":
        words = d.name.split(" ")
        draft = replace(d, name=" ".join([*words[1:], words[0]]), website="", contact_email="")
    elif how == "same-website":
        draft = replace(d, name=f"{d.name} (Regional Office)", acronym="")
    else:  # "acronym-as-name": someone typed the short name only
        draft = replace(d, name=d.acronym, website="", contact_email="")
    return replace(
        original,
        key=f"{gen.prefix}-org-{index:04d}",
        draft=draft,
        target_status=OrganizationStatus.PENDING,
        status_reason="",
        duplicate_of=original.key,
        admin_subject=f"demo-admin-{index:04d}",
    )


def _country_office(gen: _Generator, parent: DemoOrganization, index: int) -> DemoOrganization:
    """A country office of a UN entity, registered under its parent."""
    region = region_of(parent.draft.headquarters_country)
    for entry in gen.rng.sample(COUNTRIES[region], k=len(COUNTRIES[region])):
        name = f"{parent.draft.name} - {_country_label(entry[0])} Office"
        if name.casefold() not in gen.names and entry[0] != parent.draft.headquarters_country:
            break
    else:
        raise RuntimeError(f"no country left for another office of {parent.draft.name}")
    code, adjective, language = entry
    gen.names.add(name.casefold())
    host = gen.host(f"{parent.draft.acronym}-{code}")
    draft = replace(
        parent.draft,
        name=name,
        acronym=f"{parent.draft.acronym}-{code}"[:30] if parent.draft.acronym else "",
        headquarters_country=code,
        operating_countries=(code,),
        regions=(region.value,),
        languages=tuple(dict.fromkeys((language, "en"))),
        website=f"https://{host}",
        contact_email=f"office@{host}",
        description=(
            f"The {adjective} country office of {parent.draft.name}. It supports national "
            "partners and connects them with peers in other countries."
        ),
    )
    return DemoOrganization(
        key=f"{gen.prefix}-org-{index:04d}",
        draft=draft,
        home_instance=INSTANCE_OF_REGION[region],
        target_status=OrganizationStatus.VERIFIED,
        evidence_note="Confirmed by the parent entity.",
        parent_key=parent.key,
        admin_subject=f"demo-admin-{index:04d}",
    )


def _expert(gen: _Generator, index: int, organizations: Sequence[DemoOrganization]) -> DemoExpert:
    rng = gen.rng
    given, family = rng.choice(GIVEN_NAMES), rng.choice(FAMILY_NAMES)
    topics = rng.sample(sorted(EXPERTISE), k=rng.randint(1, 2))
    areas = list(dict.fromkeys(a for t in topics for a in rng.sample(EXPERTISE[t], k=1)))
    sdgs = sorted({s for t in topics for s in dict(TOPICS)[t]})
    region = rng.choices(list(REGION_WEIGHTS), weights=list(REGION_WEIGHTS.values()))[0]
    countries = list(dict.fromkeys(gen.country(region)[0] for _ in range(rng.randint(1, 4))))
    language = next(e[2] for e in COUNTRIES[region] if e[0] == countries[0])
    languages = list(dict.fromkeys([language, "en", *rng.sample(REGION_LANGUAGES[region], k=1)]))
    visibility = rng.choices(
        (ExpertVisibility.PUBLIC, ExpertVisibility.MEMBERS_ONLY, ExpertVisibility.HIDDEN),
        weights=(60, 25, 15),
    )[0]
    affiliation_key, affiliation = "", ""
    verified = [o for o in organizations if o.target_status is OrganizationStatus.VERIFIED]
    roll = rng.random()
    if roll < 0.5 and verified:
        affiliation_key = rng.choice(verified).key
    elif roll < 0.8:
        affiliation = f"{rng.choice(COUNTRIES[region])[1]} National University"
    years = rng.randint(5, 30)
    biography = (
        f"{given} {family} has {years} years of experience in {' and '.join(areas)}, "
        f"working with governments and communities in {len(countries)} "
        f"{'country' if len(countries) == 1 else 'countries'}. "
        "Available for peer exchanges and short advisory missions."
    )
    draft = ExpertDraft(
        display_name=f"{given} {family}",
        visibility=visibility.value,
        expertise_areas=tuple(areas),
        sdgs=tuple(sdgs),
        languages=tuple(languages),
        countries=tuple(countries),
        affiliation=affiliation,
        biography=biography,
    )
    return DemoExpert(
        key=f"{gen.prefix}-expert-{index:03d}",
        draft=draft,
        affiliation_key=affiliation_key,
        owner_subject=f"demo-expert-{index:03d}",
    )


def generate(
    seed: int = DEFAULT_SEED,
    organizations: int = DEFAULT_ORGANIZATIONS,
    experts: int = DEFAULT_EXPERTS,
) -> DemoData:
    """The demo data set: the same records for the same arguments, every type in every region.

    Order matters to the seeder: organizations that others refer to (parents, originals of
    near-duplicates) come before them.
    """
    types, regions = list(OrganizationType), list(Region)
    if organizations < len(types) * len(regions) + 12:
        raise ValueError(f"need at least {len(types) * len(regions) + 12} organizations")
    gen = _Generator(seed, organizations)
    # Every (type, region) pair once, then the rest weighted towards the South.
    pairs = [(t, r) for t in types for r in regions]
    gen.rng.shuffle(pairs)
    offices, duplicates = 8, 6
    while len(pairs) < organizations - offices - duplicates:
        region = gen.rng.choices(regions, weights=[REGION_WEIGHTS[r] for r in regions])[0]
        pairs.append((gen.rng.choice(types), region))
    orgs = [gen.organization(i, t, r) for i, (t, r) in enumerate(pairs)]

    parents = [
        o for o in orgs if o.draft.type == "UN_ENTITY" and " Country Office" not in o.draft.name
    ]
    # Country offices hang under verified UN entities, the only parents a reviewer would accept.
    parents = [o for o in parents if o.target_status is OrganizationStatus.VERIFIED] or parents
    for n in range(offices):
        orgs.append(_country_office(gen, parents[n % len(parents)], len(orgs)))

    hows = ("reordered", "same-website", "acronym-as-name")
    candidates = [o for o in orgs[: len(pairs)] if len(o.draft.acronym) >= 3]
    for n, original in enumerate(gen.rng.sample(candidates, k=duplicates)):
        orgs.append(_near_duplicate(gen, original, len(orgs), hows[n % len(hows)]))

    people = tuple(_expert(gen, i, orgs) for i in range(experts))
    return DemoData(seed, tuple(orgs), people)


def type_number(name: str) -> organization_type_pb2.OrganizationType.ValueType:
    """OrganizationType number of a domain type name, e.g. 'NGO'."""
    return organization_type_pb2.OrganizationType.Value(f"ORGANIZATION_TYPE_{name}")


def _region_number(name: str) -> geography_pb2.Region.ValueType:
    return geography_pb2.Region.Value(f"REGION_{name}")


def organization_message(
    draft: OrganizationDraft, parent_id: str = ""
) -> organization_pb2.Organization:
    """The Organization message of a draft (parent_id overrides its parent reference)."""
    return organization_pb2.Organization(
        name=draft.name,
        acronym=draft.acronym,
        type=type_number(draft.type) if draft.type else 0,  # type: ignore[arg-type]
        headquarters_country=draft.headquarters_country,
        operating_countries=list(draft.operating_countries),
        regions=[_region_number(r) for r in draft.regions],
        sdgs=list(draft.sdgs),  # type: ignore[arg-type]
        website=draft.website,
        contact_email=draft.contact_email,
        description=draft.description,
        languages=list(draft.languages),
        parent_organization_id=parent_id or draft.parent_organization_id,
    )


def organization_request(
    org: DemoOrganization, parent_id: str = ""
) -> pb.RegisterOrganizationRequest:
    """RegisterOrganization for a demo organization; its key is the request id (idempotency)."""
    return pb.RegisterOrganizationRequest(
        request_id=org.key, organization=organization_message(org.draft, parent_id)
    )


def expert_message(draft: ExpertDraft, affiliation_id: str = "") -> expert_pb2.Expert:
    """The Expert message of a draft (affiliation_id overrides its affiliation reference)."""
    return expert_pb2.Expert(
        display_name=draft.display_name,
        visibility=(
            expert_pb2.ExpertVisibility.Value(f"EXPERT_VISIBILITY_{draft.visibility}")
            if draft.visibility
            else 0  # type: ignore[arg-type]
        ),
        expertise_areas=list(draft.expertise_areas),
        sdgs=list(draft.sdgs),  # type: ignore[arg-type]
        languages=list(draft.languages),
        countries=list(draft.countries),
        affiliation_organization_id=affiliation_id or draft.affiliation_organization_id,
        affiliation=draft.affiliation,
        biography=draft.biography,
    )


def expert_request(expert: DemoExpert, affiliation_id: str = "") -> pb.RegisterExpertRequest:
    """RegisterExpert for a demo expert; its key is the request id (idempotency)."""
    return pb.RegisterExpertRequest(
        request_id=expert.key, expert=expert_message(expert.draft, affiliation_id)
    )
