import { describe, expect, it } from "vitest";

import { kindText, percent, sizeText } from "./describe";

describe("describe", () => {
  it("sizes in B, KB and MB", () => {
    expect(sizeText(812)).toBe("812 B");
    expect(sizeText(1434)).toBe("1.4 KB");
    expect(sizeText(2 * 1024 * 1024)).toBe("2.0 MB");
  });

  it("names kinds in words", () => {
    expect(kindText("image", "image/png")).toBe("Photo");
    expect(kindText("video", "video/mp4")).toBe("Video");
    expect(kindText("other", "application/x")).toBe("application/x");
  });

  it("gives whole per cents", () => {
    expect(percent(1, 3)).toBe(33);
    expect(percent(5, 0)).toBe(0);
    expect(percent(9, 3)).toBe(100);
  });
});
