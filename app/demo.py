"""A realistic demo ledger, built only through the ledger services.

`armslength demo-data` calls load_demo() on an empty database. Every gift goes
through record_gift(), so the policy screens each one exactly as it would a real
gift: the demo shows accepted, held and rejected gifts for the reasons the policy
gives, never a status written by hand. Same seed and same day give the same ledger.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from app.auth.users import create_user
from app.db.locking import ledger_write
from app.errors import NotAllowed
from app.extensions import State
from app.ledger import audit, contacts, finance
from app.ledger.audit import Actor
from app.ledger.campaigns import create_appeal, create_campaign, create_fund
from app.ledger.gifts import record_gift, refund_gift
from app.ledger.parties import add_affiliation, create_donor, create_in_kind, create_organization
from app.ledger.pledges import create_pledge, pledge_schedule
from app.ledger.relationships import add_relationship
from app.ledger.reviews import decide_held
from app.ledger.summary import compliance_summary, summary_lines
from models import (
    Affiliation,
    DonationGift,
    Donor,
    Gift,
    GiftDesignation,
    InKindArrangement,
    OnlineDonation,
    Organization,
    Pledge,
    Refund,
    Relationship,
    User,
    utcnow,
)
from models.finance import (
    CashSnapshotCreate,
    FiscalBudgetCreate,
    FundraisingGoalCreate,
    MonthlySpendCreate,
)
from models.money import display_amount
from models.schemas import (
    AffiliationCreate,
    AppealCreate,
    AttributionIn,
    CampaignCreate,
    ContactPreferences,
    DonorCreate,
    FundCreate,
    GiftCreate,
    GoodsIn,
    InKindCreate,
    InstalmentIn,
    InteractionCreate,
    OrganizationCreate,
    PledgeCreate,
    RelationshipCreate,
    TaskCreate,
    TributeIn,
    UserCreate,
)

#: Published in the README and printed by the command: for a local demo only.
DEMO_PASSWORD = "demo-password-do-not-use"  # noqa: S105 - a documented demo credential  # nosec B105
DEMO_DOMAIN = "demo.example.org"
DEMO_ROLES = ("admin", "fundraiser", "reviewer", "finance", "viewer")
SETUP = Actor("demo-data", role="admin")
COVERED = ("Halcyon Labs", "Northwind AI", "Cobalt Intelligence", "Halcyon Labs Foundation")

FIRST = """Ada Alan Amara Ana Ben Carmen Chen Dana Dev Elena Emeka Farah Felix Grace Hana
Hugo Ines Ivan Jae Jonas Kai Kavya Lena Leo Lucia Malik Maya Mateo Mei Nadia Noah Nora Omar
Priya Quinn Rafael Rosa Ruth Sam Sara Tariq Tess Theo Uma Victor Wen Yara Yusuf Zoe""".split()
LAST = """Abbott Adeyemi Alvarez Bauer Becker Brennan Castillo Chowdhury Costa Dubois Eriksen
Fischer Garcia Gupta Haddad Hansen Ito Jensen Kaur Kim Kowalski Larsen Lindqvist Mendes Moreau
Nakamura Novak Okafor Olsen Park Patel Petrov Quinn Rahman Reyes Rossi Santos Schmidt Silva
Singh Sokolov Tanaka Thompson Varga Wagner Walsh Weber Yamamoto Zhang""".split()
SMALL = (25, 35, 50, 75, 100, 150, 200, 250, 300, 500)
MEDIUM = (750, 1000, 1500, 2000, 2500, 3000, 5000)
LARGE = (7500, 10000, 15000, 20000, 25000, 50000)
MAJOR = (50000, 75000, 100000, 150000, 250000, 400000)


@dataclass
class Plan:
    """A gift to record, before it has an id."""

    donor: int
    amount: str
    on: date
    currency: str = "USD"
    method: str = "card"
    purpose: str = "general"
    kind: str = "cash"
    description: str | None = None
    fx_rate: str | None = None
    fx_source: str | None = None
    advisors: list[tuple[int, str]] = field(default_factory=list)
    pledge: int | None = None
    matches: str | None = None  # tag of the gift this employer gift matches
    tag: str | None = None
    #: Campaign, appeal and fund codes (demo.designate fills them in).
    campaign: str | None = None
    appeal: str | None = None
    fund: str | None = None
    #: Goods or services given in return: (description, value), and a tribute (GiftCreate's).
    goods: tuple[str, str] | None = None
    tribute: dict | None = None


class DemoLedger:
    def __init__(self, session: Session, state: State, seed: int):
        self.session = session
        self.state = state
        self.policy = state.policy_for(session)
        self.rng = random.Random(seed)  # noqa: S311 - demo data, not secrets  # nosec B311
        self.today = state.today()
        self.start = self.today - timedelta(days=729)
        self.plans: list[Plan] = []
        self.tagged: dict[str, int] = {}
        self.users: dict[str, Actor] = {}
        self.orgs: dict[str, int] = {}
        self.org_donors: dict[str, int] = {}
        self._names: set[str] = set()
        self.major_donors: list[int] = []
        #: (donor id, amount) of the everyday donors who give monthly.
        self.monthly: list[tuple[int, int]] = []
        #: code -> id of the demo's campaigns, appeals and funds, by kind.
        self.codes: dict[str, dict[str, int]] = {"campaign": {}, "appeal": {}, "fund": {}}

    # --- helpers ----------------------------------------------------------------------

    def day(self, offset: int) -> date:
        """A date `offset` days after the start of the two demo years (never after today)."""
        return min(self.start + timedelta(days=offset), self.today)

    def ago(self, days: int) -> date:
        return self.today - timedelta(days=days)

    def person_name(self) -> str:
        while True:
            name = f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
            if name not in self._names:
                self._names.add(name)
                return name

    def person(self, name: str | None = None, anonymous: bool = False) -> int:
        name = name or self.person_name()
        self._names.add(name)
        email = name.lower().replace(" ", ".") + "@example.net"
        donor = create_donor(self.session, DonorCreate(type="person", name=name, email=email,
                                                       anonymous=anonymous), self.users["fundraiser"])
        return donor.id

    def organization(self, name: str, covered: bool = False, parent: str | None = None,
                     aliases: tuple[str, ...] = ()) -> int:
        org = create_organization(self.session, OrganizationCreate(
            name=name, covered_lab=covered, aliases=list(aliases),
            parent_id=self.orgs[parent] if parent else None), self.users["admin"])
        self.orgs[name] = org.id
        return org.id

    def org_donor(self, name: str, category: str, org: str | None = None) -> int:
        donor = create_donor(self.session, DonorCreate(
            type="organization", name=name, category=category,
            organization_id=self.orgs[org] if org else None), self.users["fundraiser"])
        self.org_donors[name] = donor.id
        return donor.id

    def affiliate(self, donor_id: int, org: str, title: str, start: date, end: date | None = None,
                  senior: bool = False, kind: str = "employee") -> None:
        add_affiliation(self.session, donor_id, AffiliationCreate(
            organization_id=self.orgs[org], kind=kind, title=title, senior_decision_maker=senior,
            start_date=start, end_date=end), self.users["reviewer"], self.policy)

    def gift(self, donor: int, amount: int | str, on: date, **extra) -> Plan:
        plan = Plan(donor=donor, amount=str(amount), on=on, **extra)
        self.plans.append(plan)
        return plan

    # --- the cast -----------------------------------------------------------------------

    def staff(self) -> None:
        for role in DEMO_ROLES:
            email = f"{role}@{DEMO_DOMAIN}"
            user = create_user(self.session, UserCreate(email=email, role=role,
                                                        password=DEMO_PASSWORD), SETUP)
            # The demo's staff have held their roles since before its ledger starts, so the
            # demo reviewer and admin can be each other's second person at once
            # (app.ledger.approvers: a role given today may approve only after a week).
            with ledger_write(self.session):
                user = self.session.get(User, user.id)
                user.role_since = utcnow() - timedelta(days=3 * 365)
                # Sealed like any change of a staff account (app.ledger.row_hashes).
                audit.append(self.session, SETUP, "demo.role_dated", "user", user.id,
                             {"email": email, "role_since": user.role_since}, sealed=[user])
            self.users[role] = Actor(f"demo:{email}", user_id=user.id, role=role)

    def organizations(self) -> None:
        self.organization("Halcyon Labs", covered=True, aliases=("Halcyon",))
        self.organization("Northwind AI", covered=True, aliases=("Northwind",))
        self.organization("Cobalt Intelligence", covered=True, aliases=("Cobalt",))
        self.organization("Halcyon Labs Foundation", parent="Halcyon Labs")
        for name in ("Brightwater Capital", "Sable Robotics", "Ostrander & Finch LLP"):
            self.organization(name)

    def institutions(self) -> None:
        # Labs as payers: their own money is recognised through organization_id.
        for lab in ("Halcyon Labs", "Northwind AI", "Cobalt Intelligence"):
            self.org_donor(lab, "company", lab)
        self.org_donor("Halcyon Labs Foundation", "foundation", "Halcyon Labs Foundation")
        for company in ("Brightwater Capital", "Sable Robotics", "Ostrander & Finch LLP"):
            self.org_donor(company, "company", company)
        for name in ("Open Horizons Foundation", "Larkspur Family Foundation", "The Greywater Trust",
                     "Civic Futures Fund", "Evergreen Safety Initiative", "Stiftung Klarheit"):
            self.org_donor(name, "foundation")
        self.org_donor("Commonwealth Giving Fund", "daf_sponsor")

    def lab_employees(self) -> dict[str, int]:
        """Lab staff, one a senior decision-maker (a fifteenth is found out late: late_affiliation)."""
        since = self.day(-1300)
        people: dict[str, int] = {}
        roster = [
            ("senior", "Halcyon Labs", "Chief Scientist", True, None),
            ("h1", "Halcyon Labs", "Research Scientist", False, None),
            ("h2", "Halcyon Labs", "Member of Technical Staff", False, None),
            ("h3", "Halcyon Labs", "Policy Researcher", False, None),
            ("h4", "Halcyon Labs", "Software Engineer", False, None),
            ("h5", "Halcyon Labs", "Interpretability Researcher", False, None),
            ("n1", "Northwind AI", "Research Engineer", False, None),
            ("n2", "Northwind AI", "Alignment Researcher", False, None),
            ("n3", "Northwind AI", "Safety Engineer", False, self.ago(240)),  # cooling off
            ("c1", "Cobalt Intelligence", "Research Scientist", False, None),
            ("c2", "Cobalt Intelligence", "Infrastructure Engineer", False, None),
            ("c3", "Cobalt Intelligence", "Data Scientist", False, self.day(-400)),  # left long ago
            ("f1", "Halcyon Labs Foundation", "Programme Officer", False, None),
        ]
        for key, org, title, senior, end in roster:
            people[key] = self.person()
            self.affiliate(people[key], org, title, since, end, senior)
        people["contractor"] = self.person()
        self.affiliate(people["contractor"], "Northwind AI", "Red-team contractor", self.day(-500),
                       kind="contractor")
        return people

    # --- what they give -----------------------------------------------------------------

    def plan_individuals(self, count: int) -> None:
        """Everyday donors: occasional gifts, a few monthly, some with non-lab employers."""
        for i in range(count):
            donor = self.person(anonymous=self.rng.random() < 0.08)
            if i % 12 == 0:
                employer = ("Brightwater Capital", "Sable Robotics", "Ostrander & Finch LLP")[i % 3]
                self.affiliate(donor, employer, "Employee", self.day(-2000))
            if i < 12:  # monthly donors
                amount = self.rng.choice((20, 25, 50, 100, 200))
                self.monthly.append((donor, amount))
                first = self.rng.randrange(0, 200)
                for month in range(first, 730, 30):
                    self.gift(donor, amount, self.day(month), description="Monthly gift")
                continue
            tier = self.rng.random()
            pool = SMALL if tier < 0.6 else MEDIUM if tier < 0.88 else LARGE
            for _ in range(self.rng.randint(1, 4)):
                method = self.rng.choice(("card", "card", "card", "ach", "check", "paypal"))
                self.gift(donor, self.rng.choice(pool), self.day(self.rng.randrange(20, 730)),
                          method=method)

    def plan_major_donors(self, count: int) -> None:
        for _ in range(count):
            donor = self.person()
            self.major_donors.append(donor)
            for year in (0, 365):
                if self.rng.random() < 0.8:
                    self.gift(donor, self.rng.choice(MAJOR), self.day(year + self.rng.randrange(30, 330)),
                              method=self.rng.choice(("wire", "stock", "check")))

    def plan_lab_employees(self, people: dict[str, int]) -> None:
        amounts = {"h1": (50000, 75000), "h2": (10000, 15000), "h3": (5000,), "h4": (2500, 2500, 5000),
                   "h5": (250000, 400000), "n2": (500000, 750000), "n3": (50000,),
                   "c1": (150000, 250000), "c2": (1000, 1500), "c3": (100000,), "f1": (2000, 3000),
                   "contractor": (500, 750)}
        for key, gifts in amounts.items():
            for n, amount in enumerate(gifts):
                step = 600 // len(gifts)
                on = self.day(120 + n * step + self.rng.randrange(0, step))
                self.gift(people[key], amount, on, method="stock" if amount >= 100000 else "card")
        # Letters: a gala ticket (goods in return: the letter states the deductible part) and
        # a gift in memory of someone, whose family gets a notice without the amount.
        self.gift(people["c2"], 500, self.ago(40), goods=("Two seats at the spring gala dinner",
                                                         "180.00"), description="Gala tickets")
        self.gift(people["f1"], 1000, self.ago(30), tribute={
            "kind": "memory", "name": "Margaret Ellison", "notify_name": "Thomas Ellison",
            "notify_address": "44 Linden Avenue\nPortland, OR 97205"})
        # The senior decision-maker's gift: the policy rejects it.
        self.gift(people["senior"], 250000, self.ago(60), method="stock",
                  description="Gift of appreciated stock")
        # An employee's gift, and the employer's matching gift: held for a reviewer.
        self.gift(people["n1"], 10000, self.ago(100), tag="to-match")
        self.gift(self.org_donors["Northwind AI"], 10000, self.ago(70), method="ach",
                  matches="to-match", description="Employer matching gift", tag="match")

    def plan_institutions(self, people: dict[str, int]) -> None:
        grants = {"Larkspur Family Foundation": 1500000, "The Greywater Trust": 750000,
                  "Evergreen Safety Initiative": 2000000}
        for name, amount in grants.items():
            for year in (5, 370):
                self.gift(self.org_donors[name], amount, self.day(year + self.rng.randrange(0, 40)),
                          method="wire", description="General operating support grant")
        for year in (90, 455):
            self.gift(self.org_donors["Civic Futures Fund"], 500000, self.day(year), method="wire",
                      purpose="restricted", description="Restricted: evaluation methodology research")
        self.gift(self.org_donors["Stiftung Klarheit"], 400000, self.ago(130), currency="EUR",
                  method="wire", fx_rate="1.0832", fx_source="ECB reference rate",
                  description="Grant in euros")
        for name, amount in (("Brightwater Capital", 100000), ("Sable Robotics", 50000),
                             ("Ostrander & Finch LLP", 25000)):
            self.gift(self.org_donors[name], amount, self.day(self.rng.randrange(200, 700)),
                      method="ach", description="Corporate gift")
        # Donor-advised fund grants, attributed to their advisors.
        daf = self.org_donors["Commonwealth Giving Fund"]
        for _ in range(5):
            advisor = self.person()
            self.gift(daf, self.rng.choice((25000, 50000, 100000)), self.day(self.rng.randrange(60, 720)),
                      method="daf", advisors=[(advisor, "1")], description="DAF grant")
        couple = (self.person(), self.person())
        self.gift(daf, 200000, self.ago(45), method="daf",
                  advisors=[(couple[0], "0.5"), (couple[1], "0.5")], description="DAF grant (joint)")
        self.gift(daf, 250000, self.ago(180), method="daf", advisors=[(people["n2"], "1")],
                  description="DAF grant recommended by a lab employee")
        # Money from the labs themselves.
        self.gift(self.org_donors["Cobalt Intelligence"], 180000, self.ago(150), method="wire",
                  purpose="evaluation_services",
                  description="Payment offered for a pre-deployment dangerous-capability evaluation")
        self.gift(self.org_donors["Halcyon Labs"], 500000, self.ago(200), method="wire",
                  description="Unrestricted corporate gift", tag="lab-corporate")
        self.gift(self.org_donors["Halcyon Labs Foundation"], 250000, self.ago(20), method="wire",
                  description="Grant from a lab's foundation")
        self.gift(self.org_donors["Northwind AI"], 120000, self.ago(300), kind="in_kind",
                  method="in_kind", description="API credits for research use")
        # Donors abroad: the conversion is stored with the gift.
        self.gift(self.person("Haruto Sato"), 3000000, self.ago(75), currency="JPY", method="wire",
                  fx_rate="0.0066", fx_source="bank rate on receipt")

    def pledge(self) -> None:
        """About $16M over three years in six instalments; the ones due so far are paid."""
        donor = self.org_donors["Open Horizons Foundation"]
        pledged_on = self.day(30)
        parts = (3000000, 3000000, 2500000, 2500000, 2500000, 2500000)
        dues = [pledged_on + timedelta(days=182 * i) for i in range(len(parts))]
        pledge = create_pledge(self.session, PledgeCreate(
            donor_id=donor, amount=str(sum(parts)), currency="USD", pledged_on=pledged_on,
            description="Three-year general support commitment",
            instalments=[InstalmentIn(due_on=d, amount=str(a)) for d, a in zip(dues, parts, strict=True)],
        ), self.users["fundraiser"])
        for due, amount in zip(dues, parts, strict=True):
            paid_on = due + timedelta(days=self.rng.randrange(0, 15))
            if paid_on <= self.today:
                self.gift(donor, amount, paid_on, method="wire", pledge=pledge.id,
                          description="Pledge instalment")

    # --- campaigns, appeals and funds ---------------------------------------------------

    def campaigns(self) -> None:
        """A year-end campaign for each demo year with a letter and an e-mail appeal, this
        year's open matching drive (its donate link works), and three funds: general
        operating, and two restricted to the purposes their donors set."""
        actor, currency = self.users["fundraiser"], self.state.reporting_currency
        for year in range(self.start.year, self.today.year + 1):
            made = create_campaign(self.session, CampaignCreate(
                code=f"year-end-{year}", name=f"Year-end {year}", goal="2000000",
                starts_on=date(year, 11, 1), ends_on=date(year, 12, 31),
                description="The year-end appeal to individual donors."), actor, currency)
            self.codes["campaign"][made.code] = made.id
            for code, name, channel, sent in (("letter", "letter", "mail", date(year, 11, 5)),
                                              ("email", "e-mail", "email", date(year, 12, 1))):
                appeal = create_appeal(self.session, AppealCreate(
                    code=f"year-end-{year}-{code}", name=f"Year-end {year} {name}",
                    campaign_id=made.id, channel=channel, sent_on=sent), actor, currency)
                self.codes["appeal"][appeal.code] = appeal.id
        drive = create_campaign(self.session, CampaignCreate(
            code=f"independence-{self.today.year}", name=f"Independence drive {self.today.year}",
            goal="1500000", starts_on=date(self.today.year, 1, 1),
            description="Gifts that keep our evaluations independent of the labs."),
            actor, currency)
        self.codes["campaign"][drive.code] = drive.id
        for code, name, restricted, purpose, goal in (
                ("general-operating", "General operating", False, None, None),
                ("methodology-research", "Evaluation methodology research", True,
                 "Research into evaluation methodology, as the Civic Futures Fund set", "1000000"),
                ("biosecurity-evals", "Biosecurity evaluations", True,
                 "Dangerous-capability evaluations in biosecurity", "500000")):
            fund = create_fund(self.session, FundCreate(
                code=code, name=name, restricted=restricted, purpose=purpose, goal=goal),
                self.users["finance"], currency)
            self.codes["fund"][fund.code] = fund.id

    def designate(self) -> None:
        """Give the planned gifts a campaign, appeal and fund, as a development team would:
        restricted grants to their funds, November and December gifts from people to that
        year's year-end campaign (most through one of its appeals), this year's other gifts
        from people to the open drive, and some large gifts to biosecurity."""
        people = set(self.session.execute(select(Donor.id).where(Donor.type == "person"))
                     .scalars())
        for plan in self.plans:
            if plan.kind != "cash":
                continue
            if plan.purpose == "restricted":
                plan.fund = "methodology-research"
                continue
            if plan.donor not in people:
                if plan.method == "wire" and self.rng.random() < 0.5:
                    plan.fund = "general-operating"
                continue
            if plan.on.month >= 11:
                plan.campaign = f"year-end-{plan.on.year}"
                if self.rng.random() < 0.75:
                    plan.appeal = f"{plan.campaign}-{self.rng.choice(('letter', 'email'))}"
            elif plan.on.year == self.today.year and self.rng.random() < 0.6:
                plan.campaign = f"independence-{self.today.year}"
            if self.rng.random() < 0.12 and int(plan.amount) >= 1000:
                plan.purpose, plan.fund = "restricted", "biosecurity-evals"
            elif self.rng.random() < 0.3:
                plan.fund = "general-operating"

    # --- recording ----------------------------------------------------------------------

    def record(self) -> None:
        """Record the planned gifts in date order, as they would have arrived."""
        actor = self.users["fundraiser"]
        for plan in sorted(self.plans, key=lambda p: p.on):
            data = GiftCreate(
                donor_id=plan.donor, amount=plan.amount, currency=plan.currency, received_on=plan.on,
                kind=plan.kind, purpose=plan.purpose, method=plan.method, description=plan.description,
                fx_rate=plan.fx_rate, fx_source=plan.fx_source, pledge_id=plan.pledge,
                matching_gift_for=self.tagged[plan.matches] if plan.matches else None,
                attributions=[AttributionIn(donor_id=d, fraction=f) for d, f in plan.advisors] or None,
                campaign_id=self.codes["campaign"].get(plan.campaign),
                appeal_id=self.codes["appeal"].get(plan.appeal),
                fund_id=self.codes["fund"].get(plan.fund),
                goods_or_services=GoodsIn(description=plan.goods[0], value=plan.goods[1])
                if plan.goods else None,
                tribute=TributeIn(**plan.tribute) if plan.tribute else None,
            )
            recorded = record_gift(self.session, data, actor, self.policy, self.state.reporting_currency)
            if plan.tag:
                self.tagged[plan.tag] = recorded.gift.id

    def recurring(self) -> None:
        """Five of the monthly donors gave through the donate page: their Stripe subscriptions
        as the webhooks would have left them (two active, one paused, one past due after two
        failed payments, one cancelled), each linked to the gifts it paid. Sealed in the
        audit chain as a donation started on the form is."""
        shapes = (("active", False, 0), ("active", False, 0), ("active", True, 0),
                  ("past_due", False, 2), ("canceled", False, 1))
        for number, ((donor_id, amount), (status, paused, failed)) in enumerate(
                zip(self.monthly, shapes, strict=False), 1):
            donor = self.session.get(Donor, donor_id)
            paid = self.session.execute(
                select(Gift.id, Gift.received_on).where(Gift.donor_id == donor_id,
                                                        Gift.description == "Monthly gift")
                .order_by(Gift.received_on, Gift.id)).all()
            if not paid:
                continue
            ended = status == "canceled"
            with ledger_write(self.session):
                donation = OnlineDonation(
                    donor_id=donor_id, payer_donor_id=donor_id, donor_name=donor.name,
                    donor_email=donor.email, amount_minor=amount * 100, currency="USD",
                    frequency="monthly", policy_version=self.policy.version,
                    checkout_session_id=f"cs_demo_{number}", subscription_id=f"sub_demo_{number}",
                    customer_id=f"cus_demo_{number}", state="cancelled" if ended else "active",
                    subscription_status=status, collection_paused=paused, failed_payments=failed,
                    next_charge_on=None if paused or ended
                    else max(paid[-1].received_on + timedelta(days=30), self.today),
                    attention="A monthly payment failed; Stripe retries it." if failed and not ended
                    else None,
                    created_at=datetime.combine(paid[0].received_on, time(12), UTC))
                self.session.add(donation)
                self.session.flush()
                self.session.add_all([DonationGift(donation_id=donation.id, gift_id=gift_id)
                                      for gift_id, _day in paid])
                audit.append(self.session, SETUP, "demo.monthly_donation", "online_donation",
                             donation.id, {"subscription_id": donation.subscription_id,
                                           "status": status, "gifts": len(paid)},
                             sealed=[donation])

    def reviews(self) -> None:
        reviewer = self.users["reviewer"]
        decide_held(self.session, self.tagged["match"], "accept",
                    "Standard employer matching programme open to all Northwind staff; no link to "
                    "any evaluation. Accepted and listed in the disclosure.", reviewer, self.policy)
        decide_held(self.session, self.tagged["lab-corporate"], "reject",
                    "Declined: unrestricted money from a lab we evaluate would weaken the perceived "
                    "independence of our results.", reviewer, self.policy)

    def refunds(self) -> None:
        finance = self.users["finance"]
        candidates = self.session.execute(
            select(Gift).join(Donor, Donor.id == Gift.donor_id).where(
                Gift.status == "accepted", Gift.method == "card", Donor.type == "person",
                Gift.lab_minor == 0, Gift.received_on <= self.ago(30))
            .order_by(Gift.id)
        ).scalars().all()
        full, partial = candidates[3], max(candidates, key=lambda g: (g.amount_minor, -g.id))
        refund_gift(self.session, full.id, finance, refunded_on=full.received_on + timedelta(days=2),
                    reason="Duplicate card charge")
        refund_gift(self.session, partial.id, finance, amount_minor=partial.amount_minor // 5,
                    refunded_on=partial.received_on + timedelta(days=20),
                    reason="Donor asked to redirect part of the gift")

    def in_kind(self) -> None:
        items = (
            ("Halcyon Labs", "Pre-deployment API access to frontier models for dangerous-capability "
             "evaluations", "evaluation", self.day(40), None, None),
            ("Northwind AI", "Early access to release candidates for evaluations", "evaluation",
             self.day(100), None, None),
            ("Northwind AI", "Research API credits", "research", self.ago(300),
             self.today + timedelta(days=65), "120000"),
            ("Cobalt Intelligence", "Ongoing research access to model checkpoints", "research",
             self.day(200), None, None),
            ("Cobalt Intelligence", "Pre-release access for a cyber-capability evaluation", "evaluation",
             self.ago(150), self.ago(90), "45000"),
        )
        for org, description, purpose, start, end, value in items:
            create_in_kind(self.session, InKindCreate(
                organization_id=self.orgs[org], description=description, purpose=purpose,
                start_date=start, end_date=end, estimated_value=value,
                currency="USD" if value else None), self.users["reviewer"])

    def relationships(self) -> None:
        """The development team's record of its major donors: calls, meetings and e-mails on
        their timelines, open tasks (one overdue), and a donor who asked not to be contacted."""
        fundraiser, reviewer = self.users["fundraiser"], self.users["reviewer"]
        notes = (("meeting", "Lunch: update on the evaluations programme"),
                 ("call", "Thanked for the last gift"),
                 ("email", "Sent the annual report"),
                 ("event", "Attended the spring briefing"),
                 ("call", "Discussed a multi-year pledge"))
        for i, donor in enumerate(self.major_donors):
            for kind, summary in self.rng.sample(notes, self.rng.randrange(1, 4)):
                contacts.record_interaction(self.session, donor, InteractionCreate(
                    kind=kind, occurred_on=self.ago(self.rng.randrange(5, 330)),
                    summary=summary), fundraiser)
            if i % 3 == 0:
                contacts.create_task(self.session, TaskCreate(
                    title="Invite to the year-end briefing", donor_id=donor,
                    due_on=self.today + timedelta(days=7 + i)), fundraiser)
        if self.major_donors:
            contacts.create_task(self.session, TaskCreate(
                title="Call back about the stock transfer", donor_id=self.major_donors[-1],
                due_on=self.ago(2)), fundraiser)
            contacts.create_task(self.session, TaskCreate(
                title="Check the senior-title questions in the review queue",
                due_on=self.today + timedelta(days=1)), reviewer)
            contacts.set_contact_preferences(self.session, self.major_donors[1], ContactPreferences(
                do_not_contact=True), fundraiser)

    def households(self, people: dict[str, int]) -> None:
        """Households and relationships: the senior decision-maker's spouse gave before the
        marriage was on file, so recording it holds that gift (and the policy holds the
        next); two major donors share a household with a grown child; two lab colleagues."""
        reviewer = self.users["reviewer"]

        def relate(a: int, b: int, kind: str, start: date) -> None:
            add_relationship(self.session, a, RelationshipCreate(
                related_donor_id=b, kind=kind, start_date=start), reviewer, self.policy)

        spouse = self.person()
        self.gift(spouse, 2500, self.ago(60), method="check")
        self.record_pending()
        relate(spouse, people["senior"], "spouse_partner", self.start - timedelta(days=3000))
        self.gift(spouse, 1000, self.ago(10), method="card")
        if len(self.major_donors) >= 4:
            first, second = self.major_donors[2], self.major_donors[3]
            child = self.person()
            self.gift(child, 300, self.ago(45), method="card")
            relate(first, second, "spouse_partner", self.start - timedelta(days=5000))
            relate(second, child, "household", self.start)
        relate(people["h1"], people["h2"], "colleague", self.day(-1300))
        self.record_pending()

    def late_affiliation(self) -> None:
        """A donor turns out to work at a lab: their gifts are re-screened and held for review."""
        donor = self.person()
        self.gift(donor, 20000, self.ago(90), method="wire")
        self.gift(donor, 5000, self.ago(25))
        self.record_pending()
        self.affiliate(donor, "Northwind AI", "Product Manager", self.day(-800))

    def record_pending(self) -> None:
        self.record()
        self.plans.clear()

    def finances(self) -> None:
        """Two years of monthly spend, cash counted at each month's start, this and last
        year's budgets and a year-end goal, so the finance page and runway show figures."""
        actor, currency = self.users["finance"], self.state.reporting_currency
        this_month = self.today.replace(day=1)
        month = self.start.replace(day=1)
        months: list[date] = []
        while month < this_month:  # complete months only, as the runway counts them
            months.append(month)
            month = (month + timedelta(days=32)).replace(day=1)
        cash = 4_800_000
        for month in months:
            spent = 300_000 + 1_000 * self.rng.randrange(-40, 41)
            finance.record_spend(self.session, MonthlySpendCreate(
                month=month, amount=str(spent), currency=currency), actor, currency)
            cash += 1_000 * self.rng.randrange(-60, 61)
            if month >= self.ago(365):
                finance.record_cash(self.session, CashSnapshotCreate(
                    as_of=month, amount=str(cash), currency=currency), actor, currency)
        finance.record_cash(self.session, CashSnapshotCreate(
            as_of=this_month, amount=str(cash), currency=currency), actor, currency)
        for year, amount in ((self.today.year - 1, 3_800_000), (self.today.year, 4_100_000)):
            finance.set_budget(self.session, FiscalBudgetCreate(
                fiscal_year=year, amount=str(amount), currency=currency), actor, currency)
        finance.create_goal(self.session, FundraisingGoalCreate(
            name=f"{self.today.year} annual fund", amount="5000000", currency=currency,
            starts_on=self.today.replace(month=1, day=1),
            deadline=self.today.replace(month=12, day=31)), actor, currency)

    # --- report -------------------------------------------------------------------------

    def report(self, seed: int) -> list[str]:
        s = self.session
        statuses = Counter(dict(s.execute(select(Gift.status, func.count()).group_by(Gift.status)).all()))
        pledge_lines = []
        for pledge in s.execute(select(Pledge)).scalars():
            states = Counter(i.state for i in pledge_schedule(s, pledge, self.today))
            pledge_lines.append(
                f"  pledge:        {display_amount(pledge.amount_minor, pledge.currency)} over "
                f"{sum(states.values())} instalments ({states['paid']} paid)")
        people = s.execute(select(func.count(Donor.id)).where(Donor.type == "person")).scalar_one()
        covered = [self.orgs[name] for name in COVERED]
        lab_people = s.execute(select(func.count(func.distinct(Affiliation.donor_id)))
                               .where(Affiliation.organization_id.in_(covered))).scalar_one()
        summary = compliance_summary(s, self.today, self.policy, self.state.reporting_currency)
        runway = finance.runway(s, self.today, self.state.reporting_currency)
        lines = [
            f"Demo ledger loaded (seed {seed}): gifts dated {self.start} .. {self.today}",
            f"  organisations: {s.execute(select(func.count(Organization.id))).scalar_one()}"
            " (3 covered labs, 1 lab affiliate)",
            f"  donors:        {s.execute(select(func.count(Donor.id))).scalar_one()}"
            f" ({people} people, {lab_people} of them with lab affiliations)",
            f"  gifts:         {sum(statuses.values())} ("
            + ", ".join(f"{statuses[k]} {k}" for k in ("accepted", "held", "rejected")) + ")",
            f"  refunds:       {s.execute(select(func.count(Refund.id))).scalar_one()}",
            f"  relationships: {s.execute(select(func.count(Relationship.id))).scalar_one()}"
            " (a senior decision-maker's spouse, a household of three, two colleagues)",
            *pledge_lines,
            f"  in-kind:       {s.execute(select(func.count(InKindArrangement.id))).scalar_one()}"
            " arrangements with labs",
            f"  campaigns:     {len(self.codes['campaign'])} campaigns, "
            f"{len(self.codes['appeal'])} appeals, {len(self.codes['fund'])} funds; "
            f"{s.execute(select(func.count(GiftDesignation.id))).scalar_one()} gifts designated",
            f"  finance:       runway {finance.months_text(runway.months)} months "
            f"(cash {display_amount(runway.cash.amount_minor, runway.cash.currency)}, "
            f"{len(runway.spend)} months of spend averaged)",
            "",
            *summary_lines(summary),
            "",
            "Demo staff users (DEMO ONLY: the password is published; never use them on real data):",
            *(f"  {role}@{DEMO_DOMAIN}" for role in DEMO_ROLES),
            f"  password for all of them: {DEMO_PASSWORD}",
        ]
        return lines


def _refuse_unless_empty(session: Session, state: State) -> None:
    gifts = session.execute(select(func.count(Gift.id))).scalar_one()
    donors = session.execute(select(func.count(Donor.id))).scalar_one()
    orgs = session.execute(select(func.count(Organization.id))).scalar_one()
    demo_users = session.execute(
        select(func.count(User.id)).where(User.email.like(f"%@{DEMO_DOMAIN}"))
    ).scalar_one()
    session.rollback()
    if gifts or donors or orgs or demo_users:
        raise NotAllowed(
            f"demo-data only fills an empty database; this one already has {gifts} gifts, "
            f"{donors} donors, {orgs} organisations and {demo_users} demo users. "
            "Point DATABASE_URL at a new database to load the demo."
        )
    if state.reporting_currency != "USD":
        raise NotAllowed("the demo ledger reports in USD: unset REPORTING_CURRENCY (or set it to USD)")


def load_demo(session: Session, state: State, seed: int = 7) -> list[str]:
    """Fill an empty database with about two years of fundraising; return report lines."""
    _refuse_unless_empty(session, state)
    demo = DemoLedger(session, state, seed)
    demo.staff()
    demo.organizations()
    demo.institutions()
    people = demo.lab_employees()
    demo.plan_individuals(120)
    demo.plan_major_donors(12)
    demo.plan_lab_employees(people)
    demo.plan_institutions(people)
    demo.pledge()
    demo.campaigns()
    demo.designate()
    demo.record_pending()
    demo.recurring()
    demo.reviews()
    demo.refunds()
    demo.in_kind()
    demo.relationships()
    demo.households(people)
    demo.late_affiliation()
    demo.finances()
    return demo.report(seed)
