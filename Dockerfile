# ITFlow Reply Queue — one image for the intake and the worker (see docker-compose.yml).

# Build: compile TypeScript with the dev dependencies, then keep production ones only.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workers ./workers
RUN npm run build && npm prune --omit=dev

# Run: compiled code, production dependencies, and the SQL fixtures the demo database is built from.
FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node test/fixtures ./test/fixtures
USER node
EXPOSE 8080
# /readyz answers 200 only while MySQL and Redis are reachable. A worker-only container must
# set WORKER_PORT for it to answer; the check reads whichever port this process listens on.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.WORKER_PORT || process.env.PORT || 8080}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/workers/service.js"]
