"""Fault-naming campaign (SPEC S11.3, issue 10's acceptance): diagnose N random
installations from :mod:`minimeter.lab.fault_campaign` (default 2,000) and print the
confusion table — injected fault × what the diagnosis put first — with, per row, the
cases whose injected faults were all named or listed among the alternatives (for
"none": the correct installations reported without a fault).

    .venv/bin/python scripts/diagnose_campaign.py [--cases 2000] [--seed 10] [--misses]
"""

from __future__ import annotations

import argparse

from minimeter.lab.fault_campaign import confusion_table, run_campaign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--misses", action="store_true", help="also list the cases not named")
    args = parser.parse_args()
    outcomes = run_campaign(args.cases, seed=args.seed)
    print(f"{args.cases} random installations, seed {args.seed}: injected fault (rows) × first finding (columns)")
    print("'possible X': X stated as a possibility, not a fault (the measurements also fit a reading without one)")
    for line in confusion_table(outcomes):
        print(line)
    faulty = [o for o in outcomes if not o.correct_install]
    correct = [o for o in outcomes if o.correct_install]
    named = sum(o.all_named for o in faulty)
    false_alarms = sum(o.reported_fault for o in correct)
    print(f"\ninjected faults named or listed: {named}/{len(faulty)} = {100.0 * named / len(faulty):.2f} %")
    print(f"correct installations reported as a fault: {false_alarms}/{len(correct)}")
    if args.misses:
        for o in outcomes:
            if not o.ok:
                print(f"  miss: {o}")


if __name__ == "__main__":
    main()
