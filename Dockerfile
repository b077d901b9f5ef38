# syntax=docker/dockerfile:1
# Three stages: compile with dev dependencies, install production dependencies alone, and a final
# image with only those, the compiled code and what the gateway reads at run time.
# The Node version is pinned (the supported runtime, Node 24 LTS); pin the digest too where the
# registry is reachable: --build-arg NODE_IMAGE=node:24.22.3-bookworm-slim@sha256:…
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts off here: `prepare` would compile before the sources are copied.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY plugins ./plugins
# The policy loader imports the published policies/schema.json; the build needs it.
COPY policies ./policies
RUN npm run build

FROM ${NODE_IMAGE} AS production-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
# NODE_OPTIONS: a young generation of 2 x 16 MB instead of V8's 2 x 64 MB. Results pass through
# a slice of rows at a time, so almost nothing outlives a scavenge and a small young generation
# costs no CPU, while V8's default one alone is ~100 MB of a large result's resident memory
# (README, Performance). Override it in the chart's env to change it.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=16 \
    SLUICE_HOST=0.0.0.0 \
    SLUICE_PORT=8080 \
    SLUICE_DATA_DIR=/var/lib/sluice
WORKDIR /app
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json LICENSE THIRD_PARTY_NOTICES ./
COPY bin ./bin
COPY migrations ./migrations
COPY policies ./policies
COPY sluice.example.yaml ./
# The image's own user, by number (uid 1000 is `node` in the base image), so Kubernetes'
# runAsNonRoot can check it. Only the data directory is writable; the code is root's.
RUN mkdir -p /var/lib/sluice && chown 1000:1000 /var/lib/sluice
USER 1000:1000
EXPOSE 8080
VOLUME ["/var/lib/sluice"]
HEALTHCHECK --interval=30s --timeout=3s CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.SLUICE_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/sluice.js"]
CMD ["start"]
