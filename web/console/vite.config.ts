import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// Served by the gateway under /console/ (gateway/console.py): hashed file
// names under assets/ are cached for a year, index.html never.
export default defineConfig({
  base: "/console/",
  plugins: [react()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      "^/(auth|alerts|admin|analytics|geofencing|media|users|ws|readyz)": {
        target: "http://127.0.0.1:8000",
        ws: true,
      },
    },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
  },
});
