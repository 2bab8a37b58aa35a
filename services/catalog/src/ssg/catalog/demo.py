"""Demo data for the local stack: solutions, knowledge products, needs and funding opportunities,
the same for the same seed, owned by the registration demo organizations.

Everything here is invented by this module: titles and texts are composed from the word lists
and templates below (no text is taken from any publication); links and emails live under the
reserved ``example.org`` domain. SDG target codes are real (``ssg.platform.reference.sdg``), and
each topic names the targets it actually serves.

Records refer to organizations by their registration demo key (``ssg.registration.demo``); the
seeder maps keys to server ids (``*_message(record, ids)``) once it has learned them. The
content dataclasses are the catalog's own, so ``validate_*`` of ``domain.validation`` accept
them as they are (organization ids aside, which only the read model can confirm).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from ssg.catalog import mapping
from ssg.catalog.domain.model import (
    Contact,
    Criterion,
    FundingContent,
    Indicator,
    KnowledgeContent,
    KnowledgeType,
    Modality,
    Money,
    NeedContent,
    NeedStatus,
    Partner,
    PartnerRole,
    Period,
    Resource,
    ReviewOutcome,
    SolutionContent,
    SolutionStatus,
    SupportKind,
)
from ssg.contracts.catalog.v1 import (
    funding_pb2,
    knowledge_product_pb2,
    need_pb2,
    review_pb2,
    solution_pb2,
)
from ssg.platform.reference.geography import country_name
from ssg.registration import demo as registration_demo
from ssg.registration.domain.model import OrganizationStatus, Region

DEFAULT_SEED = registration_demo.DEFAULT_SEED
DEFAULT_SOLUTIONS = 1_500
DEFAULT_KNOWLEDGE = 200
DEFAULT_NEEDS = 150
DEFAULT_FUNDING = 80
EXAMPLE_DOMAIN = registration_demo.EXAMPLE_DOMAIN


@dataclass(frozen=True)
class Topic:
    """One kind of good practice: what it is, what it answers, how, and what it measures."""

    head: str  # title head, e.g. "Solar-powered water points"
    sdgs: tuple[int, ...]  # primary goal first
    targets: tuple[str, ...]  # real target codes of goals in sdgs
    problem: str  # completes "... where {problem}"
    method: str  # completes "The partners {method}"
    indicator: str
    unit: str
    tags: tuple[str, ...]


def _t(
    head: str,
    sdgs: tuple[int, ...],
    targets: tuple[str, ...],
    problem: str,
    method: str,
    indicator: str,
    unit: str,
    *tags: str,
) -> Topic:
    return Topic(head, sdgs, targets, problem, method, indicator, unit, tags)


# Four distinct practices per goal: the backbone of titles, texts, tags and indicators.
TOPICS: tuple[Topic, ...] = (
    # 1 No poverty
    _t("Graduation programme for ultra-poor households", (1, 8), ("1.1", "1.2", "8.5"),
       "the poorest households had neither assets nor a steady income",
       "combined a productive asset transfer, weekly coaching visits and a savings group for every household",
       "households above the extreme poverty line after two years", "%", "graduation approach", "livelihoods", "coaching"),
    _t("Unified social registry", (1, 10), ("1.3", "10.4"),
       "each social programme kept its own list and many eligible families were left out",
       "merged the programme lists into one registry that local social workers update on tablets",
       "eligible households enrolled in at least one programme", "%", "social registry", "social protection", "targeting"),
    _t("Mobile land titling clinics", (1, 5), ("1.4", "5.a"),
       "families without documents could not use their land as collateral or pass it on safely",
       "ran mobile titling clinics with low-cost boundary surveys and public validation by neighbours",
       "plots with a registered title", "plots", "land rights", "tenure security", "women's land rights"),
    _t("Shock-responsive cash transfers", (1, 13), ("1.5", "1.3", "13.1"),
       "floods and droughts pushed vulnerable families back into poverty every few years",
       "agreed on forecast triggers that release top-up payments through mobile money before a disaster peaks",
       "days from early warning to first payment", "days", "cash transfers", "anticipatory action", "mobile money"),
    # 2 Zero hunger
    _t("Community seed banks for drought-tolerant varieties", (2, 15), ("2.4", "2.5", "15.3"),
       "farmers depended on a single seed supplier and lost whole harvests in dry years",
       "set up village seed banks that multiply and exchange local drought-tolerant varieties",
       "farmers planting adapted seed", "%", "seed systems", "climate-smart agriculture", "agrobiodiversity"),
    _t("Home-grown school feeding", (2, 4), ("2.1", "2.3", "4.1"),
       "school meals relied on imported food while local smallholders struggled to find buyers",
       "let schools buy produce directly from nearby farmer cooperatives under simple framework contracts",
       "share of school food bought from local farmers", "%", "school feeding", "smallholders", "public procurement"),
    _t("Hermetic storage against post-harvest losses", (2, 12), ("2.3", "12.3"),
       "grain stored in open granaries lost a large share to pests and moisture",
       "trained rural artisans to make and sell airtight storage bags and metal silos",
       "post-harvest grain loss", "%", "post-harvest losses", "grain storage", "rural artisans"),
    _t("First 1,000 days nutrition counselling", (2, 3), ("2.2", "3.2"),
       "stunting stayed high even in districts with enough food",
       "trained community volunteers to counsel pregnant women and young mothers at home on diets and feeding",
       "stunting among children under five", "%", "nutrition", "stunting", "community volunteers"),
    # 3 Good health
    _t("Salaried community health workers", (3, 1), ("3.8", "3.1", "3.2"),
       "villages were more than a day's walk from the nearest clinic",
       "recruited, trained and paid health workers from each village, supervised by the nearest clinic nurse",
       "households visited by a health worker every month", "%", "community health", "primary health care", "health workforce"),
    _t("Maternity waiting homes", (3, 5), ("3.1", "3.7"),
       "women from remote areas reached hospital too late when labour complications started",
       "built simple lodges next to district hospitals where women wait in the last weeks of pregnancy",
       "facility births among women from remote villages", "%", "maternal health", "safe delivery", "rural health"),
    _t("Digital disease surveillance from the district up", (3, 17), ("3.3", "3.d", "17.18"),
       "outbreaks were detected weeks late because reports travelled on paper",
       "gave district clinics a free mobile reporting tool feeding a national dashboard with automatic alerts",
       "days from first case to alert", "days", "disease surveillance", "outbreak response", "health data"),
    _t("Telemedicine hubs for remote clinics", (3, 9), ("3.8", "9.c"),
       "rural nurses had no specialist to ask about difficult cases",
       "linked remote clinics to a referral hospital by video consultation with a shared patient record",
       "referrals avoided through remote consultation", "%", "telemedicine", "digital health", "referral systems"),
    # 4 Quality education
    _t("Teaching at the right level", (4,), ("4.1", "4.6"),
       "many pupils reached upper primary school without being able to read a simple text",
       "grouped children by reading level for one hour a day, led by trained teachers and volunteers",
       "pupils reading a short story fluently", "%", "foundational literacy", "remedial education", "learning outcomes"),
    _t("Teacher peer coaching circles", (4,), ("4.c", "4.1"),
       "new teachers worked alone with large classes and little support",
       "organised monthly coaching circles where teachers observe each other's lessons and plan together",
       "teachers using the new lesson routines", "%", "teacher development", "coaching", "classroom practice"),
    _t("Offline learning by radio and SMS", (4, 9), ("4.1", "4.5", "9.c"),
       "schools closed for months and most homes had no internet",
       "broadcast daily radio lessons and sent SMS quizzes that teachers followed up by phone",
       "pupils following at least three lessons a week", "%", "distance learning", "radio education", "education continuity"),
    _t("Dual apprenticeships with local employers", (4, 8), ("4.4", "8.6"),
       "vocational graduates lacked the practical skills employers were looking for",
       "split training between the college and partner workshops, with employers shaping the curriculum",
       "graduates employed within six months", "%", "TVET", "apprenticeships", "youth employment"),
    # 5 Gender equality
    _t("Gender-responsive budgeting in local government", (5, 16), ("5.c", "16.6"),
       "municipal budgets did not show how spending served women and men",
       "trained finance officers to tag budget lines and publish a yearly gender budget statement",
       "municipal budget lines tagged for gender", "%", "gender budgeting", "public finance", "local government"),
    _t("One-stop centres for survivors of violence", (5, 16), ("5.2", "16.1", "16.3"),
       "survivors had to tell their story to police, doctors and courts in separate places",
       "brought medical care, police, legal aid and counselling together in one hospital-based centre",
       "survivors receiving care within 72 hours", "%", "gender-based violence", "survivor support", "legal aid"),
    _t("Digital finance for women entrepreneurs", (5, 8), ("5.5", "5.b", "8.10"),
       "women traders were refused loans because they had no records or collateral",
       "trained women traders on mobile bookkeeping whose records lenders accept as a credit history",
       "women traders with a first formal loan", "women", "women's economic empowerment", "digital finance", "entrepreneurship"),
    _t("Women's leadership in water committees", (5, 6), ("5.5", "6.b"),
       "village water committees were run almost entirely by men",
       "reserved half of committee seats for women and trained them in finance and maintenance",
       "water committees chaired by a woman", "%", "women's leadership", "community governance", "water management"),
    # 6 Clean water and sanitation
    _t("Solar-powered community water points", (6, 7), ("6.1", "7.2"),
       "diesel pumps broke down often and fuel costs made water unaffordable",
       "replaced diesel pumps with solar pumping and a prepaid water kiosk managed by a local operator",
       "people with safe water within 30 minutes", "people", "water supply", "solar pumping", "water kiosks"),
    _t("Community-led total sanitation", (6, 3), ("6.2", "3.9"),
       "open defecation remained common despite latrine subsidies",
       "facilitated village meetings that lead communities to build and maintain their own latrines",
       "villages certified free of open defecation", "villages", "sanitation", "behaviour change", "hygiene"),
    _t("Treated wastewater for irrigation", (6, 2), ("6.3", "6.4", "2.4"),
       "farmers around the city irrigated with raw sewage while fresh water ran short",
       "built low-energy treatment ponds and trained farmer groups to irrigate safely with the treated water",
       "wastewater treated and reused", "%", "wastewater reuse", "water efficiency", "peri-urban agriculture"),
    _t("River basin councils", (6, 15), ("6.5", "6.6", "15.1"),
       "upstream and downstream users competed for water with no forum to agree on shares",
       "set up a basin council of water users, municipalities and agencies with a shared monitoring network",
       "water allocation disputes resolved by the council", "disputes", "water governance", "IWRM", "river basins"),
    # 7 Affordable and clean energy
    _t("Solar mini-grids for off-grid villages", (7, 8), ("7.1", "7.2", "8.3"),
       "villages far from the national grid relied on kerosene and small generators",
       "built solar mini-grids run by a local operator with tariffs set with the community",
       "households connected", "households", "mini-grids", "energy access", "productive use"),
    _t("Clean cooking through biogas and LPG", (7, 3), ("7.1", "3.9"),
       "families cooked on open fires indoors and spent hours collecting firewood",
       "offered household biogas digesters and LPG starter kits with pay-as-you-go refills",
       "households cooking mainly with clean fuels", "%", "clean cooking", "household air pollution", "biogas"),
    _t("Energy-efficient public buildings", (7, 13), ("7.3", "13.2"),
       "hospitals and schools paid high electricity bills for old lighting and cooling",
       "ran energy audits and retrofits paid back from the savings under performance contracts",
       "electricity use per square metre", "kWh/m2", "energy efficiency", "public buildings", "retrofits"),
    _t("Pay-as-you-go solar home systems", (7, 1), ("7.1", "7.b", "1.4"),
       "poor households could not pay for a solar kit up front",
       "sold solar home systems on small daily mobile payments until the kit is owned",
       "households owning their kit outright", "households", "solar home systems", "pay-as-you-go", "mobile payments"),
    # 8 Decent work
    _t("Digital work for rural youth", (8, 4), ("8.6", "8.5", "4.4"),
       "young people in small towns found few jobs and left for the capital",
       "trained young people for online data and service work from rural digital hubs",
       "trainees with paid online work after a year", "%", "youth employment", "digital jobs", "online work"),
    _t("One-stop formalisation for informal businesses", (8, 16), ("8.3", "16.6"),
       "most small businesses stayed informal because registration took weeks and many visits",
       "merged business, tax and social security registration into one counter and one online form",
       "days needed to register a business", "days", "business formalisation", "small enterprises", "one-stop shop"),
    _t("Community-based tourism", (8, 12), ("8.9", "12.b"),
       "tourism income flowed to outside operators and little stayed in villages",
       "helped villages run their own guesthouses and guided tours with a shared booking platform",
       "tourism income kept in the community", "%", "community tourism", "local economic development", "heritage"),
    _t("Fair recruitment for migrant workers", (8, 10), ("8.8", "10.7"),
       "workers paid large fees to brokers and arrived abroad with debts",
       "created a public recruitment channel with zero fees for workers and pre-departure orientation",
       "workers recruited without paying a fee", "workers", "labour migration", "fair recruitment", "workers' rights"),
    # 9 Industry, innovation, infrastructure
    _t("Rural road maintenance by local contractors", (9, 8), ("9.1", "8.5"),
       "rural roads became impassable every rainy season",
       "contracted local small firms and labour groups to maintain road sections under multi-year contracts",
       "road kilometres passable all year", "km", "rural roads", "labour-based works", "infrastructure maintenance"),
    _t("Value-chain finance for small manufacturers", (9, 8), ("9.3", "8.10"),
       "small agro-processors could not get working capital from banks",
       "let buyers' purchase orders serve as security for short-term loans from partner banks",
       "small processors with working capital loans", "firms", "value chains", "SME finance", "agro-processing"),
    _t("Innovation hubs linked to universities", (9, 17), ("9.5", "9.b", "17.6"),
       "university research rarely reached local companies",
       "opened innovation hubs where researchers and firms co-develop and test products",
       "products brought to market with hub support", "products", "innovation", "technology transfer", "research uptake"),
    _t("Community broadband networks", (9, 17), ("9.c", "17.8"),
       "commercial operators did not serve sparsely populated areas",
       "licensed community cooperatives to build and run local wireless networks",
       "people with affordable internet access", "people", "connectivity", "community networks", "digital inclusion"),
    # 10 Reduced inequalities
    _t("Disability-inclusive employment services", (10, 8), ("10.2", "8.5"),
       "people with disabilities were mostly shut out of formal jobs",
       "paired job seekers with disabilities with employers and paid for workplace adaptations",
       "people with disabilities placed in jobs", "people", "disability inclusion", "employment services", "accessibility"),
    _t("Cheaper digital remittances", (10, 17), ("10.c", "17.3"),
       "migrants lost a large share of what they sent home in transfer fees",
       "connected mobile money providers across the corridor so transfers go wallet to wallet",
       "average cost of sending 200 USD", "%", "remittances", "mobile money", "migration"),
    _t("Integration services for returning migrants", (10, 8), ("10.7", "8.5"),
       "returning migrants struggled to find work and use their skills at home",
       "set up municipal desks offering skills recognition, job matching and small business grants",
       "returnees with work within a year", "%", "return migration", "reintegration", "skills recognition"),
    _t("Progressive property tax reform", (10, 17), ("10.4", "17.1"),
       "property tax was outdated and fell most heavily on small owners",
       "revalued urban properties with satellite imagery and set rates that rise with property value",
       "property tax revenue", "% change", "fiscal policy", "property tax", "equity"),
    # 11 Sustainable cities
    _t("Participatory upgrading of informal settlements", (11, 6), ("11.1", "11.3", "6.2"),
       "settlements lacked drains, paths and secure tenure",
       "let residents map their settlement and decide with the city which works come first",
       "households with improved drainage and paths", "households", "slum upgrading", "participatory planning", "housing"),
    _t("Bus rapid transit corridors", (11, 13), ("11.2", "11.6", "13.2"),
       "commuters spent hours in traffic and the air was heavily polluted",
       "built dedicated bus lanes with level boarding and integrated fares",
       "average commute time on the corridor", "minutes", "urban mobility", "public transport", "air quality"),
    _t("Waste picker cooperatives in municipal recycling", (11, 12, 8), ("11.6", "12.5", "8.8"),
       "most waste went to open dumps and informal pickers worked in dangerous conditions",
       "contracted waste picker cooperatives to run separate collection and sorting centres",
       "municipal waste recycled", "%", "solid waste", "recycling", "waste pickers"),
    _t("City early warning and evacuation plans", (11, 13), ("11.5", "11.b", "13.1"),
       "flash floods in low-lying neighbourhoods struck without warning",
       "installed river gauges with SMS alerts and drilled evacuation routes with neighbourhood committees",
       "residents covered by an evacuation plan", "people", "disaster risk reduction", "early warning", "urban resilience"),
    # 12 Responsible consumption and production
    _t("Extended producer responsibility for packaging", (12, 14), ("12.5", "14.1"),
       "plastic packaging filled drains and beaches",
       "required producers to finance collection through a producer organisation with recycling targets",
       "packaging collected for recycling", "%", "EPR", "plastics", "circular economy"),
    _t("Food loss reduction in wholesale markets", (12, 2), ("12.3", "2.1"),
       "large amounts of fresh produce spoiled in wholesale markets",
       "added shared cold rooms and a food bank that collects unsold produce every evening",
       "fresh produce lost at the market", "%", "food loss", "cold chain", "food banks"),
    _t("Sustainable public procurement", (12, 16), ("12.7", "16.6"),
       "public buyers chose the cheapest offer regardless of energy use or durability",
       "added life-cycle cost and environmental criteria to standard tender documents",
       "tenders with sustainability criteria", "%", "public procurement", "green purchasing", "life-cycle costing"),
    _t("Cleaner production in small textile workshops", (12, 6), ("12.2", "12.4", "6.3"),
       "dyeing workshops used too much water and released untreated effluent",
       "ran shop-floor audits and shared low-cost changes to dyeing recipes and water recycling",
       "water use per kilogram of fabric", "litres/kg", "cleaner production", "textiles", "resource efficiency"),
    # 13 Climate action
    _t("Last-mile climate early warning", (13, 11), ("13.1", "13.3", "11.5"),
       "forecasts existed but never reached farmers and fishers in time",
       "translated forecasts into local-language voice messages and trained village focal points",
       "people receiving warnings before extreme events", "people", "early warning", "climate services", "adaptation"),
    _t("National adaptation planning support", (13, 17), ("13.2", "13.a", "17.9"),
       "ministries had no common plan or pipeline of fundable adaptation projects",
       "helped a cross-ministry team prioritise risks and prepare a pipeline of adaptation projects",
       "adaptation projects prepared for funding", "projects", "adaptation planning", "climate finance", "NAP"),
    _t("Climate education in secondary schools", (13, 4), ("13.3", "4.7"),
       "pupils learned little about climate change or what they can do about it",
       "introduced hands-on climate modules and school-led tree nurseries and energy audits",
       "schools teaching the climate modules", "schools", "climate education", "schools", "youth action"),
    _t("Urban heat action plans", (13, 3), ("13.1", "3.9"),
       "heat waves caused a sharp rise in deaths among outdoor workers and the elderly",
       "issued heat alerts, opened cooling centres and adjusted working hours during heat waves",
       "heat-related hospital admissions", "% change", "extreme heat", "public health", "adaptation"),
    # 14 Life below water
    _t("Community-managed marine protected areas", (14, 15), ("14.5", "14.2"),
       "reef fish stocks were collapsing from overfishing",
       "let fishing villages close parts of their reefs and enforce the rules with local patrols",
       "fish biomass inside the protected zones", "% change", "marine protected areas", "reefs", "co-management"),
    _t("Co-management of small-scale fisheries", (14, 2), ("14.b", "14.4", "2.3"),
       "small-scale fishers had no say in the rules and catches kept falling",
       "gave fisher associations a seat in setting seasons and gear rules with shared catch monitoring",
       "landings recorded by fishers", "%", "small-scale fisheries", "co-management", "fisher organisations"),
    _t("Stopping marine plastic at river mouths", (14, 12), ("14.1", "12.5"),
       "rivers carried household waste straight into the sea",
       "installed floating barriers at river mouths and paid local crews to collect and sort the waste",
       "plastic waste intercepted", "tonnes", "marine litter", "plastics", "river barriers"),
    _t("Seaweed farming for coastal women", (14, 5), ("14.7", "5.5"),
       "coastal women had few sources of income besides fish trading",
       "supported women's groups to farm and process seaweed for food and cosmetics buyers",
       "women earning from seaweed farming", "women", "blue economy", "aquaculture", "women's income"),
    # 15 Life on land
    _t("Community forest management with satellite alerts", (15, 13), ("15.1", "15.2", "13.2"),
       "illegal logging went unnoticed until large areas were cleared",
       "gave community forest guards phone alerts from satellite images and legal rights to patrol",
       "forest area lost each year", "ha", "community forestry", "deforestation monitoring", "forest governance"),
    _t("Farmer-managed land restoration", (15, 2), ("15.3", "2.4"),
       "degraded fields produced less every year",
       "taught farmers to protect and prune tree stumps that regrow in their fields",
       "hectares under restoration", "ha", "land restoration", "agroforestry", "regreening"),
    _t("Community rangers against wildlife crime", (15, 16), ("15.7", "15.c", "16.4"),
       "poaching was emptying protected areas and villages gained nothing from wildlife",
       "hired and trained rangers from surrounding villages and shared park revenue with them",
       "poaching incidents recorded", "incidents", "wildlife", "anti-poaching", "community conservation"),
    _t("Fair benefit sharing from genetic resources", (15, 17), ("15.6", "17.6"),
       "companies used local plant knowledge without sharing the benefits",
       "set up a national access permit and community benefit-sharing agreements",
       "benefit-sharing agreements signed", "agreements", "access and benefit sharing", "traditional knowledge", "biodiversity"),
    # 16 Peace, justice and strong institutions
    _t("Community paralegals", (16, 5), ("16.3", "5.2"),
       "poor people could not afford lawyers and rarely went to court",
       "trained community paralegals who advise, mediate and refer cases to legal aid lawyers",
       "cases resolved with paralegal support", "cases", "access to justice", "legal empowerment", "paralegals"),
    _t("Universal birth registration", (16, 3), ("16.9", "3.1"),
       "many children had no birth certificate and later could not enrol in school",
       "registered births at health facilities and during vaccination visits at no cost",
       "births registered within a year", "%", "civil registration", "legal identity", "CRVS"),
    _t("Open e-procurement", (16, 12), ("16.5", "16.6", "12.7"),
       "public tenders were opaque and few firms competed",
       "moved all tenders online with open contract data that anyone can search",
       "average number of bids per tender", "bids", "e-procurement", "transparency", "anti-corruption"),
    _t("Local peace committees", (16, 10), ("16.1", "16.7", "10.2"),
       "disputes over land and water kept turning violent",
       "set up committees of elders, women and youth that mediate disputes and warn of rising tension",
       "disputes settled without violence", "disputes", "peacebuilding", "mediation", "social cohesion"),
    # 17 Partnerships
    _t("Tax administration modernisation", (17, 16), ("17.1", "16.6"),
       "tax collection was low and most returns were filed on paper",
       "introduced online filing, risk-based audits and taxpayer services across regional offices",
       "tax revenue as share of GDP", "% of GDP", "domestic resource mobilisation", "tax administration", "e-filing"),
    _t("Strengthening national statistics", (17, 16), ("17.18", "17.19", "16.9"),
       "policy makers lacked timely data broken down by sex, age and place",
       "trained statistics office staff in sample design and opened microdata under clear rules",
       "SDG indicators with disaggregated data", "indicators", "statistics", "open data", "capacity building"),
    _t("Technology matchmaking between Southern firms", (17, 9), ("17.6", "17.7", "9.b"),
       "firms needed proven technologies from countries with similar conditions",
       "ran a matchmaking platform and exchange visits between technology holders and adopters",
       "technology transfer agreements signed", "agreements", "technology transfer", "matchmaking", "South-South trade"),
    _t("Peer learning for policy makers", (17, 16), ("17.9", "17.16", "16.6"),
       "ministries repeated costly experiments that peers elsewhere had already tried",
       "organised structured peer exchanges and study visits with follow-up coaching for reform teams",
       "reforms adopted after exchanges", "reforms", "peer learning", "policy exchange", "knowledge sharing"),
)  # fmt: skip

BENEFICIARIES = (
    "smallholder farmers", "women-headed households", "young people out of work",
    "rural schools", "district health teams", "coastal communities", "urban informal workers",
    "indigenous communities", "persons with disabilities", "municipal governments",
    "refugee and host communities", "pastoralist communities",
)  # fmt: skip
SCALES = (
    ("pilot districts", 3, 8), ("municipalities", 4, 25), ("provinces", 2, 9),
    ("villages", 20, 180), ("counties", 3, 12), ("river basins", 1, 3),
)  # fmt: skip
STARTS = (
    "It started as a small pilot",
    "The idea came from exchanges with peers in another country",
    "It grew out of a request from local authorities",
    "It was designed with the communities themselves",
)
ADAPTATIONS = (
    "The approach was adapted from a partner country and simplified for local institutions.",
    "Local staff adapted the tools to the languages and customs of each area.",
    "The first year served to test and adjust the approach before it was extended.",
    "Each step was documented so that partners in other countries can reuse it.",
)
REPLICABILITY = (
    "Works where local authorities are willing to share responsibility with communities.",
    "Has been adapted in at least one other country with similar institutions.",
    "The core steps are simple; costs fall as local teams take over.",
    "Most suited to middle-sized districts with an active civil society.",
)
PREREQUISITES = (
    "A committed local government partner and a small core team.",
    "Basic mobile coverage and a partner able to handle payments.",
    "Agreement on roles between national and local institutions.",
    "Start-up funding for the first two years until savings or fees cover costs.",
)
GENERIC_INDICATORS = (
    ("people reached", "people"),
    ("local staff trained", "people"),
    ("partner institutions involved", "institutions"),
    ("satisfaction of participants", "%"),
)
REVIEW_COMMENTS: dict[Criterion, tuple[str, ...]] = {
    Criterion.EVIDENCE_OF_RESULTS: (
        "Results are measured against a baseline.",
        "Indicators are clear; an independent check would help.",
    ),
    Criterion.REPLICABILITY: (
        "Steps are documented well enough to repeat elsewhere.",
        "Replication needs a similar institutional set-up.",
    ),
    Criterion.PARTNERSHIP: (
        "Roles of the partners are clear.",
        "Strong involvement of local partners.",
    ),
    Criterion.SUSTAINABILITY: (
        "Financing after the project period is planned.",
        "Local ownership looks solid.",
    ),
    Criterion.INNOVATION: (
        "A fresh combination of known tools.",
        "Innovative for the region.",
    ),
    Criterion.SDG_ALIGNMENT: (
        "Clearly serves the targets listed.",
        "Well aligned with the goals named.",
    ),
}
FUND_WORDS = (
    "Horizon", "Bridge", "Catalyst", "Partnership", "Resilience", "Opportunity", "Solidarity",
    "Momentum", "Pathways", "Frontier",
)  # fmt: skip
FUND_KINDS = (
    "Fund",
    "Facility",
    "Challenge Grant",
    "Window",
    "Programme",
)
KNOWLEDGE_PATTERNS: dict[KnowledgeType, tuple[str, ...]] = {
    KnowledgeType.RESEARCH_REPORT: (
        "What works in {topic}: evidence from {region}",
        "{topic} in {region}: a comparative study",
    ),
    KnowledgeType.POLICY_BRIEF: (
        "Policy brief: scaling up {topic} in {country}",
        "Making {topic} work for {beneficiaries}",
    ),
    KnowledgeType.CASE_STUDY: (
        "Case study: {topic} in {country}",
        "Lessons from {country} on {topic}",
    ),
    KnowledgeType.TOOLKIT: (
        "Practitioner toolkit: {topic}",
        "Step by step: setting up {topic}",
    ),
    KnowledgeType.DATASET: (
        "Dataset: {indicator} across {region}",
        "Open data on {topic} in {region}",
    ),
}
# Organization types that plausibly publish, fund or seek.
PUBLISHER_TYPES = (
    "THINK_TANK", "ACADEMIA", "UN_ENTITY", "NGO", "INTERGOVERNMENTAL", "SOUTH_SOUTH_NETWORK",
)  # fmt: skip
FUNDER_TYPES = (
    "FOUNDATION", "DEVELOPMENT_BANK", "UN_ENTITY", "INTERGOVERNMENTAL", "GOVERNMENT",
    "PRIVATE_SECTOR",
)  # fmt: skip
SEEKER_TYPES = ("GOVERNMENT", "NGO", "ACADEMIA", "PRIVATE_SECTOR", "SOUTH_SOUTH_NETWORK")
# Indicators that improve by going down (losses, costs, delays, incidents).
LOWER_IS_BETTER = ("loss", "lost", "cost", "stunting", "incidents", "time", "use per", "days",
                   "admissions")  # fmt: skip
NORTH = (Region.NORTH_AMERICA, Region.WESTERN_EUROPE)
# Solution statuses of a verified owner's solutions, with weights: most get published.
SOLUTION_STATUS_WEIGHTS: tuple[tuple[SolutionStatus, float], ...] = (
    (SolutionStatus.PUBLISHED, 80),
    (SolutionStatus.DRAFT, 5),
    (SolutionStatus.SUBMITTED, 4),
    (SolutionStatus.IN_REVIEW, 4),
    (SolutionStatus.CHANGES_REQUESTED, 4),
    (SolutionStatus.REJECTED, 3),
)


@dataclass(frozen=True)
class DemoReview:
    """The checklist a demo reviewer fills in."""

    outcome: ReviewOutcome
    scores: tuple[tuple[Criterion, int, str], ...]
    comment: str


@dataclass(frozen=True)
class DemoSolution:
    """One generated solution: partners refer to organizations by registration demo key."""

    key: str  # its external id: the import is idempotent on it
    organization_key: str
    content: SolutionContent  # partners' organization_id hold demo keys
    target_status: SolutionStatus
    review: DemoReview | None = None  # for statuses past IN_REVIEW


@dataclass(frozen=True)
class DemoKnowledge:
    """One generated knowledge product."""

    key: str
    organization_key: str
    content: KnowledgeContent
    publish: bool


@dataclass(frozen=True)
class DemoNeed:
    """One generated need (its seeker is verified: only verified organizations post needs)."""

    key: str
    organization_key: str
    content: NeedContent
    target_status: NeedStatus
    close_reason: str = ""


@dataclass(frozen=True)
class DemoFunding:
    """One generated funding opportunity (deadline in the future of the generation day)."""

    key: str
    organization_key: str
    content: FundingContent
    publish: bool


@dataclass(frozen=True)
class DemoCatalog:
    """Everything the catalog seeder loads, and the organizations it refers to."""

    seed: int
    organizations: registration_demo.DemoData
    solutions: tuple[DemoSolution, ...]
    knowledge: tuple[DemoKnowledge, ...]
    needs: tuple[DemoNeed, ...]
    funding: tuple[DemoFunding, ...]

    def organization_keys(self) -> set[str]:
        """Every organization key a record refers to (owners and partners)."""
        keys = {s.organization_key for s in self.solutions}
        keys |= {k.organization_key for k in self.knowledge}
        keys |= {n.organization_key for n in self.needs}
        keys |= {f.organization_key for f in self.funding}
        keys |= {p.organization_id for s in self.solutions for p in s.content.partners}
        return keys


def _country_label(alpha3: str) -> str:
    return country_name(alpha3).split(",")[0]


def _region_countries(region: Region) -> list[str]:
    return [code for code, _, _ in registration_demo.COUNTRIES[region]]


class _Generator:
    """Composes records from the word lists with one random source (the seed)."""

    def __init__(self, seed: int, data: registration_demo.DemoData, today: date) -> None:
        self.rng = random.Random(seed)
        self.prefix = f"demo-s{seed}"
        self.today = today
        self.orgs = data.organizations
        self.verified = [o for o in self.orgs if o.target_status is OrganizationStatus.VERIFIED]
        self.by_region: dict[Region, list[registration_demo.DemoOrganization]] = {}
        for org in self.verified:
            region = registration_demo.region_of(org.draft.headquarters_country)
            self.by_region.setdefault(region, []).append(org)
        self.titles: set[str] = set()

    # -- shared pieces ----------------------------------------------------------------------------

    def region_of(self, org: registration_demo.DemoOrganization) -> Region:
        return registration_demo.region_of(org.draft.headquarters_country)

    def person(self) -> str:
        return (
            f"{self.rng.choice(registration_demo.GIVEN_NAMES)} "
            f"{self.rng.choice(registration_demo.FAMILY_NAMES)}"
        )

    def unique(self, title: str) -> str:
        """title, or title with a phase or year marker when it was already used."""
        candidate, n = title, 2
        while candidate.casefold() in self.titles:
            candidate = f"{title} (phase {n})"
            n += 1
        self.titles.add(candidate.casefold())
        return candidate

    def topics_for(self, sdg: int) -> list[Topic]:
        return [t for t in TOPICS if t.sdgs[0] == sdg]

    def owner(
        self, region: Region, sdg: int, types: Sequence[str] = ()
    ) -> registration_demo.DemoOrganization:
        """A verified organization of the region, preferring one focused on sdg (and of types)."""
        pool = self.by_region.get(region) or self.verified
        typed = [o for o in pool if o.draft.type in types] if types else pool
        pool = typed or pool
        focused = [o for o in pool if sdg in o.draft.sdgs]
        return self.rng.choice(focused if focused and self.rng.random() < 0.7 else pool)

    # -- solutions --------------------------------------------------------------------------------

    def solution(self, index: int, sdg: int, region: Region) -> DemoSolution:
        rng = self.rng
        topic = rng.choice(self.topics_for(sdg))
        south = [r for r in Region if r not in NORTH]
        home = region if region not in NORTH else rng.choice(south)
        # A northern region is represented through triangular cooperation with a southern owner.
        if region in NORTH:
            modality = Modality.TRIANGULAR
        elif home is Region.EUROPE_CENTRAL_ASIA and rng.random() < 0.4:
            modality = Modality.EAST_EAST
        else:
            modality = Modality.TRIANGULAR if rng.random() < 0.3 else Modality.SOUTH_SOUTH
        # A few solutions belong to organizations not verified (now): they stay drafts.
        unverified = [
            o
            for o in self.orgs
            # Pending or suspended: the catalog refuses records of rejected organizations.
            if o.target_status in (OrganizationStatus.PENDING, OrganizationStatus.SUSPENDED)
            and self.region_of(o) is home
            and not o.duplicate_of
        ]
        if unverified and rng.random() < 0.04:
            owner = rng.choice(unverified)
            status = SolutionStatus.DRAFT
        else:
            owner = self.owner(home, sdg)
            statuses, weights = zip(*SOLUTION_STATUS_WEIGHTS, strict=True)
            status = rng.choices(statuses, weights=weights)[0]
        country = owner.draft.headquarters_country
        implementing = [country]
        peers = [c for c in _region_countries(home) if c != country]
        if modality is Modality.EAST_EAST:
            peers = [
                c for c in _region_countries(Region.EUROPE_CENTRAL_ASIA) if c not in implementing
            ]
        elif rng.random() < 0.35:
            other = rng.choice([r for r in south if r is not home])
            peers = _region_countries(other)
        beneficiaries = rng.sample(peers, k=min(len(peers), rng.randint(1, 3)))
        if modality is Modality.TRIANGULAR:
            northern = region if region in NORTH else rng.choice(NORTH)
            implementing.append(rng.choice(_region_countries(northern)))
        regions = []
        for code in (*implementing, *beneficiaries):
            found = registration_demo.region_of(code).value
            if found not in regions:
                regions.append(found)
        partners = self.partners(owner, beneficiaries, modality)
        place = _country_label(rng.choice(beneficiaries))
        title = self.unique(self.solution_title(topic, country, place, modality))
        scale, low, high = rng.choice(SCALES)
        size = rng.randint(low, high)
        group = rng.choice(BENEFICIARIES)
        start_year = rng.randint(2012, 2023)
        start = date(start_year, rng.randint(1, 12), rng.randint(1, 28))
        years = rng.randint(1, 6)
        ongoing = start_year + years > self.today.year
        end = "" if ongoing else date(start_year + years, start.month, start.day).isoformat()
        country_name_ = _country_label(country)
        partner_phrase = {
            Modality.SOUTH_SOUTH: f"peers in {place}",
            Modality.TRIANGULAR: f"peers in {place}, with support from a partner outside the region",
            Modality.EAST_EAST: f"peers in {place} and neighbouring countries",
        }[modality]
        reached = rng.randrange(800, 240_000, 100)
        baseline, value = self.indicator_values(topic)
        indicators = [
            Indicator(topic.indicator, baseline, value, topic.unit, min(start_year + years, 2025))
        ]
        for name, unit in rng.sample(GENERIC_INDICATORS, k=rng.randint(0, 2)):
            amount = reached if name == "people reached" else rng.randint(12, 900)
            if unit == "%":
                amount = rng.randint(62, 97)
            indicators.append(Indicator(name, "", str(amount), unit, 0))
        org_host = f"{org_slug(owner)}.{EXAMPLE_DOMAIN}"
        content = SolutionContent(
            title=title,
            summary=(
                f"{topic.head} for {group} in {size} {scale} of {country_name_}, shared with "
                f"{partner_phrase}. {topic.method.capitalize()}."
            ),
            challenge=(
                f"In {country_name_}, {group} lived in places where {topic.problem}. "
                f"{rng.choice(STARTS)}, when {owner.draft.name} looked for a way to change this."
            ),
            approach=(
                f"The partners {topic.method}. {rng.choice(ADAPTATIONS)} "
                f"Work began in {start.year} in {size} {scale} and was shared with {partner_phrase}."
            ),
            results=(
                f"{topic.indicator.capitalize()}: {value} {topic.unit}"
                + (f" (from {baseline})" if baseline else "")
                + f". About {reached:,} people benefited directly."
            ),
            indicators=tuple(indicators),
            sdgs=topic.sdgs,
            sdg_targets=tuple(rng.sample(topic.targets, k=rng.randint(1, len(topic.targets)))),
            implementing_countries=tuple(implementing),
            beneficiary_countries=tuple(beneficiaries),
            regions=tuple(regions),
            modality=modality.value,
            partners=tuple(partners),
            period=Period(start.isoformat(), end),
            budget=(
                Money(
                    rng.choice(("USD", "USD", "USD", "EUR")),
                    rng.randrange(20_000, 4_000_000, 5_000),
                )
                if rng.random() < 0.7
                else None
            ),
            replicability=rng.choice(REPLICABILITY),
            prerequisites=rng.choice(PREREQUISITES),
            resources=tuple(
                Resource(name, f"https://{org_host}/practices/{index:04d}/{slug}")
                for name, slug in rng.sample(
                    (
                        ("Project summary", "summary"),
                        ("Implementation guide", "guide"),
                        ("Results report", "results"),
                        ("Photo story", "story"),
                    ),
                    k=rng.randint(0, 2),
                )
            ),
            contact=Contact(self.person(), f"practices@{org_host}"),
            language="en",
            tags=tuple(dict.fromkeys((*topic.tags, modality.value.lower().replace("_", "-")))),
        )
        review = self.review(status)
        return DemoSolution(
            key=f"{self.prefix}-solution-{index:04d}",
            organization_key=owner.key,
            content=content,
            target_status=status,
            review=review,
        )

    def solution_title(self, topic: Topic, country: str, place: str, modality: Modality) -> str:
        rng = self.rng
        adjective = next(
            (a for r in registration_demo.COUNTRIES.values() for c, a, _ in r if c == country),
            _country_label(country),
        )
        name = _country_label(country)
        lower = topic.head[0].lower() + topic.head[1:]
        patterns = (
            f"{topic.head} in {name}",
            f"{topic.head}: lessons from {name}",
            f"{adjective} {lower}",
            f"{topic.head} shared from {name} with {place}",
            f"From pilot to policy: {lower} in {name}",
            f"Scaling up {lower} in {name}",
            f"{topic.head}, {name} and {place}"
            if modality is not Modality.TRIANGULAR
            else f"Triangular cooperation on {lower} in {place}",
        )
        return rng.choice(patterns)

    def indicator_values(self, topic: Topic) -> tuple[str, str]:
        """(baseline, value) that move the right way for the topic's indicator."""
        rng = self.rng
        unit = topic.unit
        falling = any(word in topic.indicator for word in LOWER_IS_BETTER)
        if unit.startswith("% change"):
            return "", f"{'-' if falling else '+'}{rng.randint(8, 45)}"
        if unit == "%" or unit == "days" or falling:
            low = rng.randint(5, 55)
            high = min(99, low + rng.randint(8, 40))
            if unit == "days":
                low, high = max(1, low // 5), low
            return (str(high), str(low)) if falling else (str(low), str(high))
        if rng.random() < 0.5:
            return "0", str(rng.randrange(50, 25_000, 10))
        return "", str(rng.randrange(50, 25_000, 10))

    def partners(
        self,
        owner: registration_demo.DemoOrganization,
        beneficiaries: Sequence[str],
        modality: Modality,
    ) -> list[Partner]:
        rng = self.rng
        chosen: list[Partner] = [Partner(owner.key, PartnerRole.PROVIDER.value)]
        used = {owner.key}
        local = [
            o
            for o in self.verified
            if o.draft.headquarters_country in beneficiaries and o.key not in used
        ]
        if local:
            org = rng.choice(local)
            chosen.append(Partner(org.key, PartnerRole.BENEFICIARY.value))
            used.add(org.key)
        if modality is Modality.TRIANGULAR or rng.random() < 0.3:
            supporters = [
                o
                for o in self.verified
                if (
                    o.key not in used
                    and o.draft.type in ("UN_ENTITY", "INTERGOVERNMENTAL", "DEVELOPMENT_BANK")
                )
                or (o.key not in used and self.region_of(o) in NORTH)
            ]
            if supporters:
                org = rng.choice(supporters)
                role = rng.choice((PartnerRole.FACILITATOR, PartnerRole.FUNDER))
                chosen.append(Partner(org.key, role.value))
                used.add(org.key)
        if rng.random() < 0.25:
            funders = [
                o for o in self.verified if o.draft.type in FUNDER_TYPES and o.key not in used
            ]
            if funders:
                chosen.append(Partner(rng.choice(funders).key, PartnerRole.FUNDER.value))
        return chosen

    def review(self, status: SolutionStatus) -> DemoReview | None:
        outcomes = {
            SolutionStatus.PUBLISHED: (ReviewOutcome.APPROVE, 3, 5),
            SolutionStatus.CHANGES_REQUESTED: (ReviewOutcome.REQUEST_CHANGES, 2, 3),
            SolutionStatus.REJECTED: (ReviewOutcome.REJECT, 1, 2),
        }
        if status not in outcomes:
            return None
        outcome, low, high = outcomes[status]
        scores = tuple(
            (c, self.rng.randint(low, high), self.rng.choice(REVIEW_COMMENTS[c])) for c in Criterion
        )
        comment = {
            ReviewOutcome.APPROVE: "Ready to publish.",
            ReviewOutcome.REQUEST_CHANGES: "Please add measured results and partner roles.",
            ReviewOutcome.REJECT: "Not a documented practice yet; results are not shown.",
        }[outcome]
        return DemoReview(outcome, scores, comment)

    # -- knowledge products -----------------------------------------------------------------------

    def knowledge(self, index: int) -> DemoKnowledge:
        rng = self.rng
        sdg = index % 17 + 1
        topic = rng.choice(self.topics_for(sdg))
        kind = list(KnowledgeType)[index % len(KnowledgeType)]
        region = rng.choice([r for r in Region if r not in NORTH])
        org = self.owner(region, sdg, PUBLISHER_TYPES)
        country = _country_label(rng.choice(_region_countries(region)))
        lower = topic.head[0].lower() + topic.head[1:]
        title = rng.choice(KNOWLEDGE_PATTERNS[kind]).format(
            topic=lower,
            region=registration_demo.REGION_LABELS[region].replace(" and ", " & ") + " countries",
            country=country,
            beneficiaries=rng.choice(BENEFICIARIES),
            indicator=topic.indicator,
        )
        title = self.unique(title[0].upper() + title[1:])
        what = {
            KnowledgeType.RESEARCH_REPORT: "This report compares programmes that",
            KnowledgeType.POLICY_BRIEF: "This brief sets out options for governments that",
            KnowledgeType.CASE_STUDY: "This case study follows partners who",
            KnowledgeType.TOOLKIT: "This toolkit gives practitioners the steps, templates and checklists to",
            KnowledgeType.DATASET: "This dataset gathers measurements from programmes that",
        }[kind]
        abstract = (
            f"{what} {topic.method}. It looks at places where {topic.problem}, and at "
            f"{topic.indicator} as the main measure of progress."
        )
        year = rng.randint(2015, min(2025, self.today.year))
        host = f"{org_slug(org)}.{EXAMPLE_DOMAIN}"
        content = KnowledgeContent(
            title=title,
            type=kind.value,
            authors=tuple(dict.fromkeys(self.person() for _ in range(rng.randint(1, 4)))),
            year=year,
            abstract=abstract,
            sdgs=topic.sdgs,
            url=f"https://{host}/publications/{year}/{index:03d}",
            language="en",
        )
        return DemoKnowledge(
            f"{self.prefix}-knowledge-{index:03d}", org.key, content, rng.random() < 0.9
        )

    # -- needs ------------------------------------------------------------------------------------

    def need(self, index: int) -> DemoNeed:
        rng = self.rng
        sdg = index % 17 + 1
        topic = rng.choice(self.topics_for(sdg))
        region = rng.choice([r for r in Region if r not in NORTH])
        org = self.owner(region, sdg, SEEKER_TYPES)
        country = org.draft.headquarters_country
        lower = topic.head[0].lower() + topic.head[1:]
        title = self.unique(
            rng.choice(
                (
                    f"Seeking experience with {lower}",
                    f"Partner wanted: {lower} in {_country_label(country)}",
                    f"Support to set up {lower}",
                    f"Looking for peers who have run {lower}",
                )
            )
        )
        kinds = rng.sample(list(SupportKind), k=rng.randint(1, 3))
        problem = (
            f"In parts of {_country_label(country)}, {topic.problem}. {org.draft.name} wants to "
            f"learn from organizations that {topic.method}, and to adapt it for "
            f"{rng.choice(BENEFICIARIES)}."
        )
        deadline = self.today + timedelta(days=rng.randint(45, 400))
        roll = rng.random()
        status = (
            NeedStatus.OPEN
            if roll < 0.8
            else NeedStatus.MATCHED
            if roll < 0.9
            else NeedStatus.IN_PROGRESS
            if roll < 0.95
            else NeedStatus.CLOSED
        )
        content = NeedContent(
            title=title,
            problem_statement=problem,
            sdgs=topic.sdgs,
            country=country,
            support_kinds=tuple(k.value for k in kinds),
            deadline=deadline.isoformat() if rng.random() < 0.8 else "",
        )
        reason = (
            "A partner was found through a peer exchange." if status is NeedStatus.CLOSED else ""
        )
        return DemoNeed(f"{self.prefix}-need-{index:03d}", org.key, content, status, reason)

    # -- funding ----------------------------------------------------------------------------------

    def funding(self, index: int) -> DemoFunding:
        rng = self.rng
        sdgs = tuple(
            dict.fromkeys(((index % 17) + 1, *rng.sample(range(1, 18), k=rng.randint(0, 2))))
        )
        topic = rng.choice(self.topics_for(sdgs[0]))
        region = rng.choice(list(Region))
        org = self.owner(region, sdgs[0], FUNDER_TYPES)
        lower = topic.head[0].lower() + topic.head[1:]
        name = f"{rng.choice(FUND_WORDS)} {rng.choice(FUND_KINDS)}"
        title = self.unique(f"{name}: call for proposals on {lower}")
        target_regions = rng.sample([r for r in Region if r not in NORTH], k=rng.randint(1, 2))
        countries = [c for r in target_regions for c in _region_countries(r)]
        eligible = sorted(rng.sample(countries, k=min(len(countries), rng.randint(3, 12))))
        low = rng.choice((10_000, 25_000, 50_000, 100_000, 250_000))
        high = low * rng.choice((2, 4, 5, 10))
        currency = rng.choice(("USD", "USD", "EUR"))
        deadline_day = self.today + timedelta(days=rng.randint(21, 420))
        host = f"{org_slug(org)}.{EXAMPLE_DOMAIN}"
        types = rng.sample(SEEKER_TYPES, k=rng.randint(0, 3))
        content = FundingContent(
            title=title,
            description=(
                f"Grants for partnerships in which organizations {topic.method}. Priority goes to "
                f"proposals where {topic.problem}, that involve at least two countries of the "
                f"South and that measure {topic.indicator}."
            ),
            eligible_countries=tuple(eligible) if rng.random() < 0.7 else (),
            eligible_organization_types=tuple(types),
            sdgs=sdgs,
            amount_min=Money(currency, low),
            amount_max=Money(currency, high),
            deadline=datetime.combine(deadline_day, time(23, 59), tzinfo=UTC),
            url=f"https://{host}/calls/{index:03d}",
        )
        return DemoFunding(
            f"{self.prefix}-funding-{index:03d}", org.key, content, rng.random() < 0.9
        )


def org_slug(org: registration_demo.DemoOrganization) -> str:
    """A short host label for an organization's links (under example.org)."""
    acronym = registration_demo.acronym_of(org.draft.name).lower() or "org"
    return f"{acronym}-{org.key.rsplit('-', 1)[-1]}"


def generate(
    seed: int = DEFAULT_SEED,
    solutions: int = DEFAULT_SOLUTIONS,
    knowledge: int = DEFAULT_KNOWLEDGE,
    needs: int = DEFAULT_NEEDS,
    funding: int = DEFAULT_FUNDING,
    *,
    today: date | None = None,
    organizations: registration_demo.DemoData | None = None,
) -> DemoCatalog:
    """The catalog demo data: the same records for the same arguments (and day).

    Deadlines of needs and funding opportunities lie after ``today`` (default: the current
    UTC day), so they can be published; everything else depends on the seed alone.
    Every SDG gets an equal share of solutions; every region appears (northern regions through
    triangular cooperation). ``organizations`` defaults to the registration demo set of seed.
    """
    if solutions < 17 * len(Region):
        raise ValueError(f"need at least {17 * len(Region)} solutions to cover SDGs and regions")
    data = organizations or registration_demo.generate(seed)
    gen = _Generator(seed, data, today or datetime.now(UTC).date())
    regions = list(Region)
    weights = [registration_demo.REGION_WEIGHTS[r] for r in regions]
    made: list[DemoSolution] = []
    for i in range(solutions):
        sdg = i % 17 + 1
        # Every (SDG, region) pair first, then regions weighted towards the South.
        if i < 17 * len(regions):
            region = regions[i // 17]
        else:
            region = gen.rng.choices(regions, weights=weights)[0]
        made.append(gen.solution(i, sdg, region))
    return DemoCatalog(
        seed=seed,
        organizations=data,
        solutions=tuple(made),
        knowledge=tuple(gen.knowledge(i) for i in range(knowledge)),
        needs=tuple(gen.need(i) for i in range(needs)),
        funding=tuple(gen.funding(i) for i in range(funding)),
    )


# -- messages for the seeder (organization keys resolved to server ids) ---------------------------


def _resolved_partners(partners: Iterable[Partner], ids: Mapping[str, str]) -> tuple[Partner, ...]:
    return tuple(replace(p, organization_id=ids[p.organization_id]) for p in partners)


def solution_message(record: DemoSolution, ids: Mapping[str, str]) -> solution_pb2.Solution:
    """The Solution message of a demo solution; ids maps organization keys to server ids."""
    content = replace(record.content, partners=_resolved_partners(record.content.partners, ids))
    message = solution_pb2.Solution(organization_id=ids[record.organization_key])
    mapping.write(content, message)
    return message


def review_message(review: DemoReview) -> review_pb2.Review:
    """The Review message of a demo review."""
    message = review_pb2.Review(
        outcome=mapping.enum_number(review_pb2.ReviewOutcome.DESCRIPTOR, review.outcome.value),  # type: ignore[arg-type]
        comment=review.comment,
    )
    for criterion, score, comment in review.scores:
        message.scores.add(
            criterion=mapping.enum_number(review_pb2.ReviewCriterion.DESCRIPTOR, criterion.value),
            score=score,
            comment=comment,
        )
    return message


def knowledge_message(
    record: DemoKnowledge, ids: Mapping[str, str]
) -> knowledge_product_pb2.KnowledgeProduct:
    """The KnowledgeProduct message of a demo knowledge product."""
    message = knowledge_product_pb2.KnowledgeProduct(
        publishing_organization_id=ids[record.organization_key]
    )
    mapping.write(record.content, message)
    return message


def need_message(record: DemoNeed, ids: Mapping[str, str]) -> need_pb2.Need:
    """The Need message of a demo need."""
    message = need_pb2.Need(seeker_organization_id=ids[record.organization_key])
    mapping.write(record.content, message)
    return message


def funding_message(record: DemoFunding, ids: Mapping[str, str]) -> funding_pb2.FundingOpportunity:
    """The FundingOpportunity message of a demo funding opportunity."""
    message = funding_pb2.FundingOpportunity(funder_organization_id=ids[record.organization_key])
    mapping.write(record.content, message)
    return message
