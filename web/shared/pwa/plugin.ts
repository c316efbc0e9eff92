// A Vite plugin that makes an app installable (a PWA): it emits the web app
// manifest, the icons and the shell service worker (shell-sw.js) into the
// build, next to index.html, and links the manifest from the page.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import type { Plugin } from "vite";

export interface AppIdentity {
  /** "app" or "responder": picks the icons. */
  icons: "app" | "responder";
  name: string;
  shortName: string;
  themeColour: string;
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export function installable(identity: AppIdentity): Plugin {
  return {
    name: "panic-alert-installable",
    apply: "build",
    generateBundle() {
      const manifest = {
        name: identity.name,
        short_name: identity.shortName,
        start_url: "./",
        scope: "./",
        display: "standalone",
        background_color: "#ffffff",
        theme_color: identity.themeColour,
        icons: [192, 512].map((size) => ({
          src: `icon-${size}.png`,
          sizes: `${size}x${size}`,
          type: "image/png",
          purpose: "any",
        })),
      };
      this.emitFile({ type: "asset", fileName: "manifest.webmanifest", source: JSON.stringify(manifest, null, 2) });
      for (const size of [192, 512]) {
        this.emitFile({
          type: "asset",
          fileName: `icon-${size}.png`,
          source: readFileSync(here(`./${identity.icons}-${size}.png`)),
        });
      }
      this.emitFile({ type: "asset", fileName: "sw.js", source: readFileSync(here("./shell-sw.js"), "utf8") });
    },
    transformIndexHtml() {
      return [
        { tag: "link", attrs: { rel: "manifest", href: "manifest.webmanifest" }, injectTo: "head" },
        { tag: "link", attrs: { rel: "icon", href: "icon-192.png" }, injectTo: "head" },
      ];
    },
  };
}
