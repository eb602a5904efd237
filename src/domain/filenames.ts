/**
 * @module
 * Client-supplied file names: kept for display only, never part of a path on disk.
 */

const MAX_NAME_LENGTH = 200;

/**
 * Reduces a client's file name to something safe to store and echo: the last path segment, no control
 * characters, NFC, at most 200 characters (the extension kept).
 * @example sanitizeFilename('../../etc/pass\u0000wd.png') // 'passwd.png'
 */
export function sanitizeFilename(raw: string): string {
  const lastSegment = raw.split(/[/\\]/).pop() ?? '';
  let name = lastSegment
    .normalize('NFC')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/gu, '')
    .trim();
  name = name.replace(/^\.+/, '');
  if ([...name].length > MAX_NAME_LENGTH) {
    const chars = [...name];
    const dot = name.lastIndexOf('.');
    const ext = dot > 0 && name.length - dot <= 10 ? name.slice(dot) : '';
    name = chars.slice(0, MAX_NAME_LENGTH - [...ext].length).join('') + ext;
  }
  return name || 'upload';
}

/** The name without its extension. */
export function stemOf(filename: string): string {
  const dot = filename.lastIndexOf('.');
  return dot > 0 ? filename.slice(0, dot) : filename;
}

/**
 * A `Content-Disposition: attachment` value: an ASCII fallback, plus RFC 6266 `filename*` when the
 * name is not plain ASCII.
 */
export function contentDisposition(filename: string): string {
  const fallback = filename.replace(/[^\x20-\x7e]|["\\%;]/g, '_');
  if (fallback === filename) return `attachment; filename="${filename}"`;
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
