CREATE TABLE "run_spans" (
	"book_id" text NOT NULL,
	"run_started_at" timestamp with time zone NOT NULL,
	"tenant" text,
	"kind" text NOT NULL,
	"step" text NOT NULL,
	"chapter" integer NOT NULL,
	"section" integer NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"ended_at" timestamp with time zone NOT NULL,
	"duration_ms" integer NOT NULL,
	"exact" boolean NOT NULL,
	CONSTRAINT "run_spans_book_id_run_started_at_step_chapter_section_pk" PRIMARY KEY("book_id","run_started_at","step","chapter","section")
);
--> statement-breakpoint
CREATE TABLE "run_timelines" (
	"book_id" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"tenant" text,
	"status" text NOT NULL,
	"ended_at" timestamp with time zone,
	"duration_ms" integer,
	"error" text,
	"total_chapters" integer NOT NULL,
	"total_sections" integer NOT NULL,
	"version" integer NOT NULL,
	"cursor" jsonb NOT NULL,
	CONSTRAINT "run_timelines_book_id_started_at_pk" PRIMARY KEY("book_id","started_at")
);
--> statement-breakpoint
CREATE INDEX "run_spans_exact_run_started_idx" ON "run_spans" USING btree ("run_started_at","kind","step","duration_ms") WHERE "run_spans"."exact";--> statement-breakpoint
CREATE INDEX "run_spans_exact_tenant_run_started_idx" ON "run_spans" USING btree ("tenant","run_started_at","kind","step","duration_ms") WHERE "run_spans"."exact";--> statement-breakpoint
CREATE INDEX "run_timelines_started_at_idx" ON "run_timelines" USING btree ("started_at");--> statement-breakpoint
CREATE INDEX "run_timelines_tenant_started_at_idx" ON "run_timelines" USING btree ("tenant","started_at");--> statement-breakpoint
CREATE INDEX "run_timelines_ended_at_idx" ON "run_timelines" USING btree ("ended_at");--> statement-breakpoint
CREATE INDEX "run_timelines_tenant_ended_at_idx" ON "run_timelines" USING btree ("tenant","ended_at");