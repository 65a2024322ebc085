// Bundles the page into dist/: index.html, app.js (our code + Connect-ES + Uppy + hls.js),
// app.css (ours + Uppy's widgets). `node build.mjs` builds; `--out DIR` builds elsewhere.
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIndex = args.indexOf("--out");
const out = outIndex >= 0 ? resolve(args[outIndex + 1]) : join(here, "dist");

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
  absWorkingDir: here,
};

const [js, css] = await Promise.all([
  esbuild.build({
    ...common,
    entryPoints: { app: "src/main.ts" },
    outdir: out,
    format: "esm",
    target: ["es2022", "chrome100", "firefox100", "safari15"],
    metafile: true,
  }),
  esbuild.build({ ...common, entryPoints: { app: "src/styles.css" }, outdir: out, metafile: true }),
]);
await copyFile(join(here, "src/index.html"), join(out, "index.html"));

for (const result of [js, css]) {
  for (const [file, info] of Object.entries(result.metafile.outputs)) {
    if (!file.endsWith(".map")) console.log(`${file.replace(/^.*dist\//, "dist/")}  ${(info.bytes / 1024).toFixed(1)} KiB`);
  }
}
