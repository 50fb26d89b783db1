import { describe, expect, it } from 'vitest';
import { EncodedEvent, formatSseComment, formatSseEvent } from '../../src/server/delivery/sse.js';

describe('formatSseEvent', () => {
  it('writes event, id, retry and data in that order, ending with a blank line', () => {
    expect(formatSseEvent({ event: 'progress', id: '7', retry: 3000, data: '{"version":7}' })).toBe(
      'event: progress\nid: 7\nretry: 3000\ndata: {"version":7}\n\n',
    );
  });

  it('writes only the fields given', () => {
    expect(formatSseEvent({ data: 'hello' })).toBe('data: hello\n\n');
    expect(formatSseEvent({ id: '1' })).toBe('id: 1\n\n');
    expect(formatSseEvent({})).toBe('\n');
  });

  it('keeps empty data as one empty data line', () => {
    expect(formatSseEvent({ data: '' })).toBe('data: \n\n');
  });

  it.each([
    ['LF', 'one\ntwo\nthree'],
    ['CRLF', 'one\r\ntwo\r\nthree'],
    ['CR', 'one\rtwo\rthree'],
    ['mixed', 'one\r\ntwo\nthree'],
  ])('splits data on %s into one data line per line', (_, data) => {
    expect(formatSseEvent({ data })).toBe('data: one\ndata: two\ndata: three\n\n');
  });

  it('keeps leading, trailing and consecutive line breaks as empty data lines', () => {
    expect(formatSseEvent({ data: '\na\n\nb\n' })).toBe('data: \ndata: a\ndata: \ndata: b\ndata: \n\n');
  });

  it('turns text that looks like SSE fields into data lines', () => {
    expect(formatSseEvent({ event: 'progress', id: '1', data: 'x\n\nevent: progress\nid: 999\ndata: {}' })).toBe(
      'event: progress\nid: 1\ndata: x\ndata: \ndata: event: progress\ndata: id: 999\ndata: data: {}\n\n',
    );
  });

  it.each(['a\nb', 'a\rb', 'a\r\nb', 'a\0b', '\n'])('refuses id %j', (id) => {
    expect(() => formatSseEvent({ id, data: 'x' })).toThrow(/id must not contain CR, LF or NUL/);
  });

  it.each(['progress\n', 'a\rb', 'a\0b'])('refuses event %j', (event) => {
    expect(() => formatSseEvent({ event, data: 'x' })).toThrow(/event must not contain CR, LF or NUL/);
  });

  it('writes retry as a whole, non-negative number of milliseconds', () => {
    expect(formatSseEvent({ retry: 3000 })).toBe('retry: 3000\n\n');
    expect(formatSseEvent({ retry: 1500.9 })).toBe('retry: 1500\n\n');
    expect(formatSseEvent({ retry: -5 })).toBe('retry: 0\n\n');
  });
});

describe('formatSseComment', () => {
  it('writes a comment line followed by a blank line', () => {
    expect(formatSseComment('heartbeat')).toBe(': heartbeat\n\n');
  });

  it('keeps line breaks from ending the comment', () => {
    expect(formatSseComment('a\nb\r\nc\rd')).toBe(': a b  c d\n\n');
  });
});

describe('EncodedEvent', () => {
  it('frames the event as one chunk of a chunked body, its size counted in bytes', () => {
    const text = formatSseEvent({ event: 'progress', data: '{"message":"Kapitel fünf ✓"}' });
    const event = new EncodedEvent(text);
    const size = Buffer.byteLength(text);
    expect(size).toBeGreaterThan(text.length);
    expect(event.chunk.toString()).toBe(`${size.toString(16)}\r\n${text}\r\n`);
    expect(event.plain.toString()).toBe(text);
  });

  it('joins the parts it is given into one event', () => {
    expect(new EncodedEvent('data: ', 'é', '\n\n').plain.toString()).toBe('data: é\n\n');
  });

  it.each([
    ['one-line JSON', '{"bookId":"b1","message":"Kapitel fünf ✓"}'],
    ['JSON with line breaks between tokens', '{\n  "bookId": "b1",\r\n  "version": 3\r}'],
    ['empty data', ''],
  ])('encodes a progress event with %s exactly as formatSseEvent writes it', (_, json) => {
    for (const id of ['12', '12.7.0', undefined]) {
      const event = EncodedEvent.progress(json, id);
      const text = formatSseEvent({ event: 'progress', id, data: json });
      expect(event.plain.toString()).toBe(text);
      expect(event.chunk.toString()).toBe(`${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`);
    }
  });

  it('refuses a progress event id that could end the field', () => {
    expect(() => EncodedEvent.progress('{}', '1\ndata: x')).toThrow(/id must not contain CR, LF or NUL/);
  });
});
