# ITFlow Reply Queue — one image for the intake and the worker (see docker-compose.yml).
#
# Node 22: the newest dependencies (fastify's light-my-request, @fastify/static) require it, and
# Node 20 is past its end of life.

# Build: compile TypeScript with the dev dependencies.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workers ./workers
RUN npm run build

# Production dependencies, installed from the lock file alone: this layer changes only when the
# lock file does (not on every source change, as pruning the build stage's node_modules would).
FROM node:22-bookworm-slim AS production-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# Run: compiled code, production dependencies, and the SQL fixtures the demo database is built
# from (`cli demo`, the compose file's demo-data service). Owned by root: the service never
# writes under /app, so its user gets no write access to its own code.
FROM node:22-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080
WORKDIR /app
COPY package.json ./
COPY --from=production-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY test/fixtures ./test/fixtures
USER node
EXPOSE 8080
# /readyz answers 200 only while MySQL and Redis are reachable. A worker-only container must
# set WORKER_PORT for it to answer; the check reads whichever port this process listens on.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.WORKER_PORT || process.env.PORT || 8080}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/workers/service.js"]
