# syntax=docker/dockerfile:1
# Two stages: the builder holds the compilers (better-sqlite3's addon, tsc); the runtime image holds only what runs.
# Both on Node 24, the current LTS: Node 20 reached end of life on 2026-04-30 and gets no more security fixes.

FROM node:24-bookworm-slim AS builder
WORKDIR /app
# better-sqlite3 compiles its addon with node-gyp when no prebuilt binary can be fetched
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
# Compile against the image's own Node headers instead of downloading them from nodejs.org
ENV npm_config_nodedir=/usr/local
# Manifests first: the dependency layer is reused until package*.json change
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/ ./src/
# The dashboard's front end, bundled into dist/ui by npm run build (esbuild, a dev dependency: builder only), and the
# service itself, bundled into dist/server.js by the same esbuild
COPY ui/ ./ui/
COPY scripts/build-server.ts scripts/build-ui.ts scripts/write-if-changed.ts ./scripts/
COPY migrations/ ./migrations/
RUN npm run build \
  && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim AS runtime
# MALLOC_ARENA_MAX here and --max-semi-space-size in CMD: as npm start runs it (README, "Start-up and memory")
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    DATABASE_PATH=/data/s2v.db \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
# Created and owned by node before VOLUME: a fresh named volume copies this folder's ownership, so the app can write
RUN mkdir -p /data && chown node:node /data
VOLUME /data
COPY --from=builder --chown=node:node /app/package.json ./package.json
COPY --from=builder --chown=node:node /app/node_modules ./node_modules
COPY --from=builder --chown=node:node /app/migrations ./migrations
COPY --from=builder --chown=node:node /app/dist ./dist
USER node
EXPOSE 3000
# The slim image has no curl: Node's own fetch asks the readiness route, bounded so a hung server counts as unhealthy
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/readyz', { signal: AbortSignal.timeout(3000) }).then((res) => process.exit(res.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself (no shell in between to swallow it)
CMD ["node", "--max-semi-space-size=8", "dist/server.js"]
