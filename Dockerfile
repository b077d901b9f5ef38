# Two stages: compile with dev dependencies, run with production ones only.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY plugins ./plugins
# The policy loader imports the published policies/schema.json; the build needs it.
COPY policies ./policies
# `npm ci` installs exactly the lock file and runs the prepare script, which compiles TypeScript
# into dist/.
RUN npm ci --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    SLUICE_HOST=0.0.0.0 \
    SLUICE_PORT=8080 \
    SLUICE_DATA_DIR=/var/lib/sluice
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY migrations ./migrations
COPY policies ./policies
COPY sluice.example.yaml ./
RUN mkdir -p /var/lib/sluice && chown node:node /var/lib/sluice
USER node
EXPOSE 8080
VOLUME ["/var/lib/sluice"]
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.SLUICE_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/sluice.js"]
CMD ["start"]
