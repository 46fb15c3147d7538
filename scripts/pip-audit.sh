#!/usr/bin/env bash
# Check requirements.txt against known vulnerabilities with pip-audit.
# Exit 1 when it finds any. When the vulnerability service cannot be reached
# (or answers for none of the packages), say so and exit 0: CI must not fail
# because a third-party service is down or firewalled.
set -uo pipefail
cd "$(dirname "$0")/.."
PIP_AUDIT_VERSION=2.10.1
venv=var/pip-audit
mkdir -p var
if [ ! -x "$venv/bin/pip-audit" ]; then
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "pip-audit==$PIP_AUDIT_VERSION"; }; then
    echo "pip-audit: could not be installed; vulnerability check skipped"
    exit 0
  fi
fi
"$venv/bin/pip-audit" -r requirements.txt --progress-spinner off --timeout 30 -f json -o var/pip-audit.json \
  >var/pip-audit.log 2>&1
rc=$?
python3 - "$rc" <<'PY'
import json, sys
rc = int(sys.argv[1])
try:
    report = json.load(open("var/pip-audit.json"))
except (OSError, ValueError):
    print("pip-audit: the vulnerability service could not be reached; check skipped (see var/pip-audit.log)")
    sys.exit(0)
deps = report.get("dependencies", [])
audited = [d for d in deps if "skip_reason" not in d]
vulnerable = [d for d in audited if d.get("vulns")]
for dep in vulnerable:
    for vuln in dep["vulns"]:
        fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
        print(f"pip-audit: {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixes})")
if vulnerable:
    sys.exit(1)
if not audited:
    print(f"pip-audit: the vulnerability service answered for none of {len(deps)} packages; check skipped")
    sys.exit(0)
print(f"pip-audit: no known vulnerabilities in {len(audited)} packages ({len(deps) - len(audited)} not audited)")
PY
