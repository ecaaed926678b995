#!/usr/bin/env node
/*
 * agv.js runs independent VDA 5050 2.0 vehicles for fleetflow's tests: one
 * AgvController with a VirtualAgvAdapter (npm vda-5050-lib 1.4.0, coatyio,
 * MIT; pinned in package.json, installed by `make thirdparty`) per configured
 * AGV. The library is used as published: nothing is patched and nothing is made
 * more tolerant, so what fleetflow sees is that library's own dialect.
 *
 *   node agv.js CONFIG.json
 *
 *   {"brokerUrl":"mqtt://127.0.0.1:1883","interfaceName":"uagv","vdaVersion":"2.0.0",
 *    "timeLapse":1,
 *    "agvs":[{"manufacturer":"acme","serialNumber":"sn1","mapId":"m","x":0,"y":0,
 *             "theta":0,"lastNodeId":"S0","batteryCharge":90,"speed":2.0}]}
 *
 * Per AGV: manufacturer and serialNumber are required; mapId, x, y, theta,
 * lastNodeId become the adapter's initialPosition, batteryCharge its
 * initialBatteryCharge (percent), speed its vehicleSpeed (m/s). timeLapse
 * (global, optional, default 1) is the adapter's timeLapse. exitOnStdinClose
 * (global, optional): if true, stdin reaching EOF stops everything as SIGTERM
 * does, so the vehicles do not outlive a parent that died (the Go helper in
 * internal/thirdparty sets it and holds stdin open). Everything else
 * keeps the library's defaults (tickRate 5 Hz, agvNormalDeviationXyTolerance
 * 0.5 m, agvNormalDeviationThetaTolerance 0.349066 rad, publishStateInterval
 * 30 s, visualization every 1 s, ended instant actions and instantActions
 * errors reported in 5 state messages).
 *
 * stdout carries exactly one line per AGV, `READY <manufacturer>/<serialNumber>`,
 * once its controller is started: connected, connection ONLINE published
 * (retained), order and instantActions subscribed (acknowledged by the broker)
 * and its first state published. Nothing else is written to stdout. Errors go
 * to stderr (DEBUG=vda-5050:* adds the library's own debug log there).
 * SIGTERM or SIGINT stops every controller (each publishes connection OFFLINE,
 * retained, and disconnects) and exits 0; a second signal, or stopping taking
 * longer than 8 s, exits 1. A failed start or an unhandled error exits 1.
 *
 * What the VirtualAgvAdapter accepts (adapter/virtual-agv-adapter.js), checked
 * when an order or instant action arrives; an action that fails the check
 * makes the controller reject the whole order (errorType "orderError",
 * "order action is not executable", references actionId, actionType,
 * actionParameter) or the instant action ("instantActionError"):
 *   - pick, drop (node actions only): actionParameters stationType must be a
 *     string starting with "floor" (e.g. "floor") and loadType must be exactly
 *     "EPAL"; duration optional (number, seconds, default 5, after 1 s
 *     INITIALIZING). pick FAILS at execution when a load is already on board,
 *     drop FAILS when there is none. pick reports a load (loadType EPAL).
 *   - noop (instant, node, edge): optional duration (number, default 5 s).
 *   - initPosition (instant, node): x, y, theta (numbers), mapId, lastNodeId
 *     (strings) required, lastNodeSequenceId optional.
 *   - startPause / stopPause (instant), startCharging / stopCharging
 *     (instant, node; optional duration), orderExecutionTime (instant,
 *     parameter orders: array).
 *   - the controller itself handles stateRequest, cancelOrder and
 *     factsheetRequest (instant).
 *   Any other actionType is "not supported". Actions are looked up by
 *   actionType; actionName is ignored. Every node after the first must have a
 *   nodePosition (else "noRouteError", "missing nodePosition"), and the first
 *   node of a new order must lie within allowedDeviationXy (default 0.5 m) of
 *   the vehicle on the same mapId (else "noRouteError").
 */
"use strict";

const fs = require("fs");
const { AgvController, VirtualAgvAdapter, Topic } = require("vda-5050-lib");

const STOP_TIMEOUT_MS = 8000;

function fail(msg) {
    process.stderr.write(`agv.js: ${msg}\n`);
    process.exit(1);
}

process.on("unhandledRejection", err => {
    fail(`unhandled rejection: ${err && err.stack ? err.stack : err}`);
});
process.on("uncaughtException", err => {
    fail(`uncaught exception: ${err && err.stack ? err.stack : err}`);
});

function readConfig(file) {
    let cfg;
    try {
        cfg = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch (err) {
        fail(`cannot read config ${file}: ${err.message}`);
    }
    if (!cfg || typeof cfg !== "object") {
        fail(`config ${file}: not a JSON object`);
    }
    if (typeof cfg.brokerUrl !== "string" || cfg.brokerUrl === "") {
        fail(`config ${file}: brokerUrl is required (e.g. mqtt://127.0.0.1:1883)`);
    }
    if (!Array.isArray(cfg.agvs) || cfg.agvs.length === 0) {
        fail(`config ${file}: agvs must list at least one AGV`);
    }
    cfg.agvs.forEach((a, i) => {
        if (!a || typeof a.manufacturer !== "string" || typeof a.serialNumber !== "string") {
            fail(`config ${file}: agvs[${i}] needs manufacturer and serialNumber strings`);
        }
    });
    return cfg;
}

// Observes (does not change) the controller: resolves firstState once the
// controller has published its first state, which it does right after its
// order and instantActions subscriptions are acknowledged.
class ObservedAgvController extends AgvController {
    constructor(...args) {
        super(...args);
        this.firstState = new Promise(resolve => { this._onFirstState = resolve; });
    }
    async publish(topic, object, options) {
        const published = await super.publish(topic, object, options);
        if (topic === Topic.State && published !== undefined) {
            this._onFirstState();
        }
        return published;
    }
}

function adapterOptions(cfg, a) {
    const o = {};
    const pos = {};
    for (const k of ["mapId", "x", "y", "theta", "lastNodeId"]) {
        if (a[k] !== undefined) {
            pos[k] = a[k];
        }
    }
    if (Object.keys(pos).length > 0) {
        // The adapter replaces its whole default initialPosition, so fill in
        // the library's defaults for what the config leaves out.
        o.initialPosition = { mapId: "local", x: 0, y: 0, theta: 0, lastNodeId: "0", ...pos };
    }
    if (a.batteryCharge !== undefined) {
        o.initialBatteryCharge = a.batteryCharge;
    }
    if (a.speed !== undefined) {
        o.vehicleSpeed = a.speed;
    }
    if (cfg.timeLapse !== undefined) {
        o.timeLapse = cfg.timeLapse;
    }
    return o;
}

async function main() {
    if (process.argv.length !== 3) {
        fail("usage: node agv.js CONFIG.json");
    }
    const cfg = readConfig(process.argv[2]);
    const controllers = cfg.agvs.map(a => new ObservedAgvController(
        { manufacturer: a.manufacturer, serialNumber: a.serialNumber },
        {
            interfaceName: cfg.interfaceName || "uagv",
            vdaVersion: cfg.vdaVersion || "2.0.0",
            transport: { brokerUrl: cfg.brokerUrl },
        },
        { agvAdapterType: VirtualAgvAdapter },
        adapterOptions(cfg, a),
    ));

    let stopping = false;
    const stopAll = async signal => {
        if (stopping) {
            if (signal === "stdin close") {
                return;
            }
            fail(`second ${signal} while stopping`);
        }
        stopping = true;
        const timer = setTimeout(() => fail(`stopping took longer than ${STOP_TIMEOUT_MS} ms`), STOP_TIMEOUT_MS);
        const results = await Promise.allSettled(controllers.map(c => c.stop()));
        clearTimeout(timer);
        let ok = true;
        results.forEach((r, i) => {
            if (r.status === "rejected") {
                ok = false;
                process.stderr.write(`agv.js: stopping ${cfg.agvs[i].manufacturer}/${cfg.agvs[i].serialNumber}: ${r.reason}\n`);
            }
        });
        process.exit(ok ? 0 : 1);
    };
    process.on("SIGTERM", () => stopAll("SIGTERM"));
    process.on("SIGINT", () => stopAll("SIGINT"));
    if (cfg.exitOnStdinClose === true) {
        process.stdin.on("end", () => stopAll("stdin close"));
        process.stdin.on("error", () => stopAll("stdin close"));
        process.stdin.resume();
    }

    await Promise.all(controllers.map(async (c, i) => {
        const id = `${cfg.agvs[i].manufacturer}/${cfg.agvs[i].serialNumber}`;
        try {
            await c.start();
            await c.firstState;
        } catch (err) {
            fail(`starting ${id} on ${cfg.brokerUrl}: ${err && err.message ? err.message : err}`);
        }
        if (!stopping) {
            process.stdout.write(`READY ${id}\n`);
        }
    }));
}

main();
