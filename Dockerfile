# Build: compile TypeScript and bundle the dashboard.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The lock links this dev-only package (openapi-typescript with its own TypeScript 5): npm ci needs its package.json.
COPY tools/openapi-codegen/package.json ./tools/openapi-codegen/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json tsconfig.sdk.json ./
COPY src ./src
COPY web ./web
RUN npm run build

# Run: production dependencies, compiled code (with the empty embedded database the build made), migrations, the dashboard and the CLI.
FROM node:20-bookworm-slim
ENV NODE_ENV=production PORT=3000 DATA_DIR=/app/data
WORKDIR /app
COPY package.json package-lock.json ./
COPY tools/openapi-codegen/package.json ./tools/openapi-codegen/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/web ./web
COPY drizzle ./drizzle
# The command line (README, Command line): `docker compose exec booksai-progress booksai-progress watch <bookId>`.
COPY bin ./bin
RUN ln -s /app/bin/booksai-progress.js /usr/local/bin/booksai-progress && mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+process.env.PORT+(process.env.BASE_PATH||'')+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# A larger young generation for V8: half the young GCs under load, for ~2 KiB per connection (README, Operations).
CMD ["node", "--max-semi-space-size=32", "dist/main.js"]
