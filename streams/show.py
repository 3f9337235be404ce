"""Readable tables of a case and a loan for ``arrears case`` (money shown in major units)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table


def money(minor: int | None, currency: str | None = None) -> str:
    if minor is None:
        return "-"
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    return f"{sign}{units:,}.{cents:02d}" + (f" {currency}" if currency else "")


def render_case(case: dict[str, Any]) -> Table:
    table = Table(title=f"case {case.get('case_id')}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    currency = case.get("currency")
    for key, value in case.items():
        if key in ("overdue_amount",):
            value = money(value, currency)
        elif key == "promise" and value:
            value = f"{money(value['amount'], currency)} by {value['date']}"
        table.add_row(key, "-" if value is None else str(value))
    return table


def render_loan(loan: dict[str, Any]) -> Group:
    currency = loan.get("currency")
    head = Table(title=f"loan {loan['loan_id']}", show_header=False)
    head.add_column("field", style="bold")
    head.add_column("value")
    for key in ("customer_id", "product_code", "principal", "opened_on", "closed_reason", "business_date",
                "overdue_amount", "dpd", "bucket", "oldest_due_date", "outstanding_amount", "credit"):
        value = loan.get(key)
        if key in ("principal", "overdue_amount", "outstanding_amount", "credit"):
            value = money(value, currency)
        head.add_row(key, "-" if value is None else str(value))
    customer = loan.get("customer") or {}
    for key in ("name", "phone", "national_id"):  # masked unless the token has the pii scope
        if customer.get(key):
            head.add_row(f"customer {key.replace('_', ' ')}", str(customer[key]))
    inst = Table(title="installments (allocation: fee, then interest, then principal)")
    for col in ("#", "due", "due amount", "paid", "outstanding", "overdue"):
        inst.add_column(col, justify="right")
    for i in loan.get("installments", []):
        due = i["principal_due"] + i["interest_due"] + i["fee_due"]
        paid = i["principal_paid"] + i["interest_paid"] + i["fee_paid"]
        inst.add_row(str(i["installment_no"]), i["due_date"], money(due), money(paid), money(i["outstanding"]),
                     "yes" if i["overdue"] else "")
    pays = Table(title="repayments")
    for col in ("payment", "value date", "amount", "channel", "reversed"):
        pays.add_column(col)
    for r in loan.get("repayments", []):
        pays.add_row(r["payment_id"], r["value_date"], money(r["amount"]), r["channel"], "yes" if r["reversed"] else "")
    cases = Table(title="cases")
    for col in ("case", "status", "bucket", "dpd", "overdue", "opened", "closed", "reason"):
        cases.add_column(col)
    for c in loan.get("cases", []):
        cases.add_row(c["case_id"], c["status"], str(c.get("bucket", "")), str(c.get("dpd", "")),
                      money(c.get("overdue_amount"), None) if "overdue_amount" in c else "",
                      str(c.get("opened_on", "")), str(c.get("closed_on") or ""), str(c.get("close_reason") or ""))
    return Group(head, inst, pays, cases)
