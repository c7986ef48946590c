#!/bin/sh
# Installs the Debian packages the tests drive as real components, if any is missing:
#   chromium, chromium-driver, fonts-dejavu-core — the browser test (tests/test_web_browser.py;
#     Playwright drives /usr/bin/chromium, it never downloads a browser of its own);
#   mosquitto — the 1,000-meter MQTT test (tests/test_fleet_serve.py) and
#     `benchmarks/fleet_scaling.py --serve N --mqtt mosquitto`, which start a broker of their
#     own from /usr/sbin/mosquitto (their own configuration, a free loopback port) and stop it;
#     they never use a system-wide broker the package may have started.
# `make test` runs it; it does nothing when both programs are there.
set -eu
if [ -x /usr/bin/chromium ] && [ -x /usr/sbin/mosquitto ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core mosquitto >/dev/null
