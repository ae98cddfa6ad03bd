# defender-fluent container image: the collector (`run`, the default command) and the response
# sidecar (`respond`) from one image. Non-root, runs on a read-only root file system: the only
# writable place is stateDir on the /var/lib/defender-fluent volume; the config is mounted at
# /etc/defender-fluent (see deploy/kubernetes/).
#   docker build -t defender-fluent:0.1.0 .
#   docker run --read-only -v defender-fluent-state:/var/lib/defender-fluent \
#     -v "$PWD/defender.yaml:/etc/defender-fluent/defender.yaml:ro" --env-file defender-fluent.env defender-fluent:0.1.0

# build: compile plugin/ to dist/ with the dev dependencies (TypeScript)
FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` builds, and the sources are not copied yet
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY plugin plugin
RUN npm run build

# runtime: production dependencies and the compiled code only
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist/plugin dist/plugin
COPY schemas schemas
COPY transforms transforms
COPY docs/fields.md docs/fields.md
COPY defender.example.yaml fluent.conf.example fluent-bit.yaml.example ./
# stateDir lives here (a volume); the uid of the image's `node` user, numeric so that
# Kubernetes' runAsNonRoot can verify it
RUN mkdir -p /var/lib/defender-fluent /etc/defender-fluent && chown 1000:1000 /var/lib/defender-fluent && chmod 0700 /var/lib/defender-fluent
VOLUME /var/lib/defender-fluent
USER 1000:1000
# the collector's health listener (health.listen) and the sidecar (respond.listen), when configured
EXPOSE 9464 8686
ENTRYPOINT ["node", "/app/dist/plugin/cli.js"]
CMD ["run", "--config", "/etc/defender-fluent/defender.yaml"]
