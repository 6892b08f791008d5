"""MITRE ATT&CK tags of a rule (Sigma style: ``attack.exfiltration``, ``attack.t1041``,
``attack.t1048.003``) as ECS ``threat.*`` fields of a case.

The table names the 14 enterprise tactics and the techniques the shipped rules use; a
technique burstwatch has no name for keeps its id (as its name) and its ATT&CK page.
"""

from __future__ import annotations

from typing import Any

FRAMEWORK = "MITRE ATT&CK"

# Sigma tag (the tactic's name, lower case, words joined by _) -> (id, name)
TACTICS: dict[str, tuple[str, str]] = {
    "reconnaissance": ("TA0043", "Reconnaissance"),
    "resource_development": ("TA0042", "Resource Development"),
    "initial_access": ("TA0001", "Initial Access"),
    "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"),
    "privilege_escalation": ("TA0004", "Privilege Escalation"),
    "defense_evasion": ("TA0005", "Defense Evasion"),
    "credential_access": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"),
    "lateral_movement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"),
    "command_and_control": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"),
    "impact": ("TA0040", "Impact"),
}

TECHNIQUES: dict[str, str] = {
    "T1029": "Scheduled Transfer",
    "T1030": "Data Transfer Size Limits",
    "T1041": "Exfiltration Over C2 Channel",
    "T1048": "Exfiltration Over Alternative Protocol",
    "T1048.001": "Exfiltration Over Symmetric Encrypted Non-C2 Protocol",
    "T1048.002": "Exfiltration Over Asymmetric Encrypted Non-C2 Protocol",
    "T1048.003": "Exfiltration Over Unencrypted Non-C2 Protocol",
    "T1071": "Application Layer Protocol",
    "T1567": "Exfiltration Over Web Service",
    "T1572": "Protocol Tunneling",
    "T1573": "Encrypted Channel",
}

_BY_TACTIC_ID = {tid: name for tid, name in TACTICS.values()}


def _technique_url(tid: str) -> str:
    return "https://attack.mitre.org/techniques/" + tid.replace(".", "/") + "/"


def threat_fields(tags: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """ECS ``threat`` of a rule's tags ({} when it has no ATT&CK tag). Lists are parallel:
    the n-th id, name and reference describe one tactic (or technique)."""
    tactics: dict[str, str] = {}
    techniques: dict[str, str] = {}
    subs: dict[str, str] = {}
    for tag in tags:
        if not tag.lower().startswith("attack."):
            continue
        word = tag[len("attack."):].lower()
        if word in TACTICS:
            tid, name = TACTICS[word]
            tactics[tid] = name
        elif word.startswith("ta") and word[2:].isdigit():
            tid = word.upper()
            tactics[tid] = _BY_TACTIC_ID.get(tid, tid)
        elif word.startswith("t") and word[1:].replace(".", "", 1).isdigit():
            tid = word.upper()
            parent = tid.split(".")[0]
            techniques.setdefault(parent, TECHNIQUES.get(parent, parent))
            if "." in tid:
                subs[tid] = TECHNIQUES.get(tid, tid)
    if not (tactics or techniques):
        return {}
    out: dict[str, Any] = {"framework": FRAMEWORK}
    if tactics:
        out["tactic"] = {"id": list(tactics), "name": list(tactics.values()),
                         "reference": [f"https://attack.mitre.org/tactics/{t}/" for t in tactics]}
    if techniques:
        out["technique"] = {"id": list(techniques), "name": list(techniques.values()),
                            "reference": [_technique_url(t) for t in techniques]}
        if subs:
            out["technique"]["subtechnique"] = {
                "id": list(subs), "name": list(subs.values()),
                "reference": [_technique_url(t) for t in subs]}
    return out
