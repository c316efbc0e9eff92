import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

import { installable } from "../shared/pwa/plugin.ts";

// Served by the gateway under /responder/ (gateway/console.py), like the console.
export default defineConfig({
  base: "/responder/",
  plugins: [react(), installable({ icons: "responder", name: "Panic Alert responder", shortName: "Responder", themeColour: "#14293d" })],
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false },
  server: {
    proxy: {
      "^/(auth|alerts|users|geofencing|media|ws)": { target: "http://127.0.0.1:8000", ws: true },
    },
  },
  test: { environment: "jsdom", include: ["src/**/*.test.ts", "src/**/*.test.tsx"] },
});
