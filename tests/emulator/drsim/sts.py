"""Who may assume a role. moto's AssumeRole hands out credentials for any role ARN, existing or
not; AWS answers `AccessDenied` unless the role exists and its trust policy allows the caller,
with the external id the policy's condition asks for (STS API Reference, AssumeRole, Errors;
IAM User Guide, "Access to AWS accounts owned by third parties" (the sts:ExternalId condition)
and "Policy evaluation logic" (no Allow means denied)).

Accounts an organization creates hold `OrganizationAccountAccessRole`, trusting the
management account (AWS Organizations User Guide, "Accessing a member account as the
management account"). drsim's default account (123456789012) plays the management account: the
test bed reaches a member account through that role, as an administrator would, to create the
member role and databases there.

Simplification: a principal is matched by its account (the account id, its `:root` ARN, or
any ARN in it), since moto's static test keys carry no identity name; statements that Deny,
and conditions other than `StringEquals` on `sts:ExternalId`, are not modelled.
"""

import json
import re
from typing import Any
from urllib.parse import unquote

from moto.iam.models import get_account_id_from, iam_backends

from .core import ACCOUNT, Request

ORGANIZATION_ROLE = "OrganizationAccountAccessRole"
ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):role/(?:.*/)?([\w+=,.@-]+)$")


def caller_account(access_key: str | None) -> str:
    return get_account_id_from(access_key) if access_key else ACCOUNT


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _allows(policy: dict[str, Any], caller: str, external_id: str | None) -> bool:
    statements = policy.get("Statement") or []
    for statement in [statements] if isinstance(statements, dict) else statements:
        if statement.get("Effect") != "Allow":
            continue
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in _listed(statement.get("Action"))):
            continue
        principal = statement.get("Principal") or {}
        names = ["*"] if principal == "*" else _listed(principal.get("AWS") if isinstance(principal, dict) else None)
        if not any(p == "*" or p == caller or p.split(":")[4:5] == [caller] for p in names):
            continue
        wanted = ((statement.get("Condition") or {}).get("StringEquals") or {}).get("sts:ExternalId")
        if wanted is not None and external_id not in _listed(wanted):
            continue
        return True
    return False


def refusal(req: Request) -> str | None:
    """Why AWS would refuse this AssumeRole (None: it would not, or it is no AssumeRole)."""
    if req.service != "sts" or req.action != "AssumeRole":
        return None
    role_arn = req.params.get("RoleArn", "")
    caller = caller_account(req.access_key)
    denied = f"User: arn:aws:iam::{caller}:user/drsim is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    found = ROLE_ARN.match(role_arn)
    if not found:
        return denied
    account, name = found.groups()
    if name == ORGANIZATION_ROLE and caller == ACCOUNT:
        return None
    role = next((r for r in iam_backends[account]["aws"].roles.values() if r.arn == role_arn), None)
    if role is None:
        return denied
    try:
        policy = json.loads(unquote(role.assume_role_policy_document))
    except ValueError:
        return denied
    return None if _allows(policy, caller, req.params.get("ExternalId")) else denied
