# syntax=docker/dockerfile:1
# Build stage: all dependencies and the TypeScript compiler; ends with production dependencies only.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# The docs page's script, vendored with its .br (quality 11, ~30 s) into dist/vendor/ before the sources
# come in, so this layer is rebuilt only when Scalar does; npm run build then finds it current.
COPY scripts/vendor-docs.ts ./scripts/vendor-docs.ts
COPY src/adapters/scalar-assets.ts ./src/adapters/scalar-assets.ts
RUN npm run vendor:docs
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY handlers ./handlers
# The prune drops @scalar/api-reference (a dev dependency): dist/vendor/ holds all the page needs of it.
RUN npm run build && npm prune --omit=dev

# Runtime stage: compiled output and production dependencies on a current LTS, as a non-root user.
FROM node:24-slim AS runtime
# jemalloc: glibc's allocator fragments under libvips' threads, and sharp runs single-threaded on glibc
# without jemalloc (sharp.concurrency() is 1); preloaded, sharp uses every core.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libjemalloc2 \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(find /usr/lib -name libjemalloc.so.2 | head -n 1)" /usr/local/lib/libjemalloc.so.2 \
 && mkdir -p /data && chown node:node /data
ENV NODE_ENV=production \
    LD_PRELOAD=/usr/local/lib/libjemalloc.so.2 \
    PORT=8000 \
    UPLOAD_DIR=/data/uploads \
    PROCESSED_DIR=/data/processed \
    STATE_DIR=/data/state
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
VOLUME ["/data"]
EXPOSE 8000
# Slim images have no curl: node asks the liveness route itself.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node itself gets SIGTERM (never npm start here). The worker service runs: node dist/src/worker.js
CMD ["node", "dist/src/server.js"]
