import { describe, expect, it } from "vitest";

import { describeAlert, shortId } from "./naming";
import { backoffMs, parseFrame, pingEveryMs } from "./frames";

describe("frames", () => {
  it("parses known frames and ignores the rest", () => {
    expect(parseFrame('{"type":"pong","data":{}}')?.type).toBe("pong");
    expect(parseFrame('{"type":"something.new","data":{}}')).toBeNull();
    expect(parseFrame("not json")).toBeNull();
    expect(parseFrame('{"type":"pong"}')).toBeNull();
    expect(parseFrame("[1]")).toBeNull();
  });

  it("backs off from half a second to ten, with jitter", () => {
    expect(backoffMs(0, () => 0.5)).toBe(500);
    expect(backoffMs(3, () => 0.5)).toBe(4000);
    expect(backoffMs(30, () => 0.5)).toBe(10_000);
    expect(backoffMs(0, () => 0)).toBe(400);
    expect(backoffMs(0, () => 1)).toBe(600);
  });

  it("pings every third of the heartbeat timeout", () => {
    expect(pingEveryMs(90, () => 0.5)).toBe(30_000);
    expect(pingEveryMs(90, () => 0)).toBe(27_000);
  });
});

describe("accessible names", () => {
  it("begin with the type and contain the short id", () => {
    const name = describeAlert({
      alert_type: "medical",
      id: "0123456789abcdef",
      status: "en_route",
      silent: true,
      duress: false,
    });
    expect(name).toBe("medical alert 01234567, en route, silent");
    expect(shortId("0123456789abcdef")).toBe("01234567");
  });
});
