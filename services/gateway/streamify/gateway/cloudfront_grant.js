// CloudFront Function (runtime cloudfront-js-2.0), viewer request of the media distribution:
// the edge's copy of the gateway's /media grant check (streamify.core.media_grants).
//
//   /videos/{id}/grant.{expires}.{signature}/{rest}  ->  /videos/{id}/{rest}   (then the cache)
//   signature = base64url(HMAC-SHA256(key, "videos/{id}/\n{expires}"))
//
// Every media request needs a grant here (CloudFront cannot ask Metadata who may watch), so with
// this distribution Metadata signs a grant into every video's URLs (STREAMIFY_MEDIA_GRANT_ALL_VIDEOS).
// The grant leaves the URI before the cache lookup: one cache entry per object for every viewer.
// The HMAC key is the deployment's STREAMIFY_MEDIA_GRANT_SECRET, kept in the distribution's
// KeyValueStore under "media-grant-key" (never in this code).
import cf from 'cloudfront';
import crypto from 'crypto';

const kvs = cf.kvs();
const GRANTED = /^\/videos\/([a-z0-9][a-z0-9-]{0,62})\/grant\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})\/([^?#]+)$/;

function refuse(status, description) {
  return { statusCode: status, statusDescription: description, headers: { 'cache-control': { value: 'no-store' } } };
}

// No timingSafeEqual in CloudFront Functions: compare every character.
function sameText(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

async function handler(event) {
  const request = event.request;
  if (request.method === 'OPTIONS') return request; // CORS preflight: no bytes, no grant
  const m = GRANTED.exec(request.uri);
  if (!m) return refuse(403, 'Forbidden');
  const id = m[1], expires = m[2], signature = m[3], rest = m[4];
  if (rest.split('/').some((part) => part === '' || part === '.' || part === '..')) return refuse(403, 'Forbidden');
  if (Number(expires) < Date.now() / 1000) return refuse(403, 'Forbidden');
  let key;
  try {
    key = await kvs.get('media-grant-key');
  } catch (err) {
    return refuse(503, 'Service Unavailable'); // fail closed
  }
  const expected = crypto.createHmac('sha256', key).update('videos/' + id + '/\n' + expires).digest('base64url');
  if (!sameText(expected, signature)) return refuse(403, 'Forbidden');
  request.uri = '/videos/' + id + '/' + rest;
  request.querystring = {};
  return request;
}
