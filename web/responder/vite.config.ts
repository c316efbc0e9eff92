import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// Served by the gateway under /responder/ (gateway/console.py), like the console.
export default defineConfig({
  base: "/responder/",
  plugins: [react()],
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false },
  server: {
    proxy: {
      "^/(auth|alerts|users|geofencing|media|ws)": { target: "http://127.0.0.1:8000", ws: true },
    },
  },
  test: { environment: "jsdom", include: ["src/**/*.test.ts", "src/**/*.test.tsx"] },
});
