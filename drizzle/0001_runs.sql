CREATE TABLE "runs" (
	"book_id" text PRIMARY KEY NOT NULL,
	"title" text NOT NULL,
	"chapters" integer NOT NULL,
	"sections_per_chapter" integer NOT NULL,
	"state" text DEFAULT 'queued' NOT NULL,
	"epoch" integer DEFAULT 0 NOT NULL,
	"owner" text,
	"lease_until" timestamp with time zone,
	"claims" integer DEFAULT 0 NOT NULL,
	"cancel_requested" boolean DEFAULT false NOT NULL,
	"base_version" integer DEFAULT 0 NOT NULL,
	"outline" jsonb,
	"queued_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "runs" ADD CONSTRAINT "runs_book_id_books_id_fk" FOREIGN KEY ("book_id") REFERENCES "public"."books"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "runs_state_queued_at_idx" ON "runs" USING btree ("state","queued_at");