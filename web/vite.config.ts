import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

/** Writes `.gz` and `.br` beside each script and stylesheet: the gateway serves them to
 * browsers that accept them (the editor's bundle is ~500 KB, ~150 KB gzipped). Both
 * encoders are deterministic, so the committed build still matches a fresh one. */
function precompress(): Plugin {
  let outDir = "";
  return {
    name: "tandem-precompress",
    apply: "build",
    configResolved(config) {
      outDir = config.build.outDir.startsWith("/") ? config.build.outDir : join(config.root, config.build.outDir);
    },
    writeBundle(_options, bundle) {
      for (const name of Object.keys(bundle)) {
        if (!/\.(js|css|svg)$/.test(name)) continue;
        const path = join(outDir, name);
        const raw = readFileSync(path);
        if (raw.length < 1024) continue;
        writeFileSync(path + ".gz", gzipSync(raw, { level: 9 }));
        writeFileSync(path + ".br", brotliCompressSync(raw, {
          params: { [constants.BROTLI_PARAM_QUALITY]: 9, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length },
        }));
      }
    },
  };
}

// The build lands in the gateway package, committed, so `make run` needs no Node.
export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  plugins: [precompress()],
  build: {
    outDir: "../gateway/web/dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
    chunkSizeWarningLimit: 1500,
  },
  server: {
    // `npm run dev` against a running `make run`: the API and sockets go to the gateway.
    proxy: {
      "/api": { target: "http://127.0.0.1:8080", ws: true },
    },
  },
  test: {
    environment: "happy-dom",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
  },
});
