"""One line of drift-doctor: what was checked, its verdict, what was found and, when it fails, the fix."""

from dataclasses import asdict, dataclass

VERDICTS = ("ok", "warn", "fail", "skip")  # only "fail" blocks a session


@dataclass
class Check:
    name: str
    verdict: str
    detail: str
    fix: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")

    def as_dict(self) -> dict:
        return asdict(self)


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)
