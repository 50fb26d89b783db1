ALTER TABLE "books" ADD COLUMN "tenant" text;--> statement-breakpoint
CREATE INDEX "books_tenant_created_at_idx" ON "books" USING btree ("tenant","created_at");