import { z } from 'zod';

// Zod probes for eval (new Function) to compile its parsers; the dashboard's policy has no
// 'unsafe-eval'. Imported before any schema is built: zod reads the setting at construction.
z.config({ jitless: true });
