#!/bin/sh
# Regenerates the test OTA artifacts: the "firmware" files, their manifests
# and detached signatures (ECDSA signatures differ on every run). Run from
# anywhere: sh testdata/artifacts/make.sh. STARTER overrides the CLI command
# (default: go run ./starter).
#
# The fleet runs 1.4.2 (release counter 0 implied). Keys: testdata/keys
# (test-only). Hardware: the warehouse-a models and every grid robot model
# (internal/site.Grid: "<manufacturer>-grid").
set -eu
cd "$(dirname "$0")/../.."
STARTER=${STARTER:-go run ./starter}
dir=testdata/artifacts
keys=testdata/keys
expires=2036-01-01T00:00:00Z

# firmware FILE VERSION LINE...: a small text image; its first line tells
# humans which it is, "sim-fault: …" lines drive the virtual robot.
firmware() {
	f=$1 v=$2
	shift 2
	{
		echo "fleetos $v"
		echo "# fleetflow test firmware image: not a real OS, read by the virtual robot (internal/sim)."
		for l in "$@"; do echo "$l"; done
		echo "build: testdata"
	} >"$dir/$f"
}

# sign FILE VERSION COUNTER KEY [ROLLBACK_FROM]: ROLLBACK_FROM (a semver
# range) is the signed rollbackFrom, the installed versions an explicit
# rollback may replace with this release; none when omitted.
sign() {
	$STARTER artifact sign --key "$keys/$4.key" --file "$dir/$1" --name fleetos --version "$2" \
		--release-counter "$3" --expires "$expires" \
		--hardware acme/Tug-200 --hardware robotix/Lift-5 \
		--hardware acme/acme-grid --hardware robotix/robotix-grid --hardware nordbot/nordbot-grid \
		--hardware gridsim/gridsim-grid ${5:+--rollback-from "$5"}
}

firmware fleetos-2.0.0.bin 2.0.0 "changes: smoother lane changes, battery telemetry every 5 s"
# Robots that got 2.0.1 … 2.1.x (e.g. 2.1.0-bad) may be rolled back to it.
sign fleetos-2.0.0.bin 2.0.0 20 release-ecdsa ">=2.0.1 <2.2.0"

firmware fleetos-2.1.0-bad.bin 2.1.0 "changes: new motor controller" "sim-fault: fatal-after-boot"
sign fleetos-2.1.0-bad.bin 2.1.0 21 release-ecdsa

firmware fleetos-2.0.1-hang.bin 2.0.1 "changes: bootloader update" "sim-fault: hang-install"
sign fleetos-2.0.1-hang.bin 2.0.1 21 release-ecdsa

firmware fleetos-1.4.2.bin 1.4.2 "changes: none (the version the fleet runs; used for rollbacks)"
# Robots on 2.0.0 … 2.1.x may be rolled back to it (r-rollback-1.4.2).
sign fleetos-1.4.2.bin 1.4.2 14 release-ed25519 ">=2.0.0 <2.2.0"

firmware fleetos-2.2.0-unsigned.bin 2.2.0 "changes: never signed: its manifest has no .sig"
sign fleetos-2.2.0-unsigned.bin 2.2.0 22 release-ecdsa
rm "$dir/fleetos-2.2.0-unsigned.bin.manifest.json.sig"

firmware fleetos-2.3.0-rogue.bin 2.3.0 "changes: signed by a key nobody trusts"
sign fleetos-2.3.0-rogue.bin 2.3.0 23 rogue-ecdsa
