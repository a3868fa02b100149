"""`loyalty referrals enrol | show`: enrol a member (with a referral code) and show a member's referrals."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from loyalty.cli.common import DbOpt, console, friendly_errors, use_database
from loyalty.db import session_scope

app = typer.Typer(help="Enrolment with referral codes and members' referrals (L13).", no_args_is_help=True)



@app.command("enrol")
def enrol(
    phone: Annotated[str | None, typer.Option(help="the member's phone")] = None,
    email: Annotated[str | None, typer.Option(help="the member's e-mail")] = None,
    card: Annotated[str | None, typer.Option(help="the member's card number")] = None,
    name: Annotated[str | None, typer.Option(help="the member's name")] = None,
    birthday: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="YYYY-MM-DD")] = None,
    store: Annotated[str | None, typer.Option(help="the store that enrols the member")] = None,
    referral_code: Annotated[str | None, typer.Option("--referral-code", help="the referrer's code")] = None,
    database_url: DbOpt = None,
) -> None:
    """Enrol a new member: the sign-up gift is given, and the referral recorded when a code is given."""
    from loyalty.customers.schemas import CustomerCreate
    from loyalty.customers.service import create_customer
    from loyalty.errors import ValidationFailed

    use_database(database_url)
    with friendly_errors(), session_scope() as session:
        try:
            data = CustomerCreate(phone=phone, email=email, card=card, name=name,
                                  birthday=birthday.date() if birthday else None, enrolled_store_id=store,
                                  referral_code=referral_code)
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from None
        customer = create_customer(session, data, actor="cli")
        customer_id = customer.id
    console.print(f"enrolled customer [bold]#{customer_id}[/bold]"
                  + (f" referred with code {referral_code}" if referral_code else ""))


@app.command("show")
def show(customer_id: int, database_url: DbOpt = None) -> None:
    """A member's referral code, share link, counts and advocate flag."""
    from loyalty.referrals.service import referral_out

    use_database(database_url)
    with friendly_errors(), session_scope() as session:
        out = referral_out(session, customer_id)
    console.print(f"code [bold]{out.code}[/bold]  {out.share_link}")
    console.print(f"referred {out.counts.referred}: pending {out.counts.pending}, rewarded {out.counts.rewarded}, "
                  f"capped {out.counts.capped}; advocate {'yes' if out.advocate else 'no'}"
                  + (f"; referred by #{out.referred_by}" if out.referred_by else ""))



