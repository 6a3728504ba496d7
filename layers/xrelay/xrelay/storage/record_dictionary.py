"""zlib preset dictionaries for stored event records (``store.encode_record``; issue 16).

A record is one small JSON document (about 1.7 KB on average) and deflate compresses a small
document poorly: it has no earlier text to refer back to, so every key name is spelt out once.
A preset dictionary is that earlier text: the key names and the fixed shapes of the record
envelope and of X's payloads (AAA v1.1 objects, X API v2 posts and users, XAA's envelope, DMs),
so a record only spends bytes on what is its own (ids, texts, times).

The fragments below are written from the record's model (models.EventRecord) and X's documented
object fields, not copied from any one payload; they are ordered rarest first, because deflate
codes a nearer match more cheaply (the envelope, in every record, comes last).

**Never edit a dictionary once records were written with it**: zlib stores only the dictionary's
Adler-32 in the record's header (``FDICT``), and a record can only be decoded with the very
bytes it was compressed with. To improve it, add a new version to ``DICTIONARIES`` and point
``CURRENT`` at it; older records keep decoding with theirs.
"""

from __future__ import annotations

import zlib

_V1_FRAGMENTS = (
    # AAA v1.1 (account activity: tweets, users, DMs, follows, favorites)
    '"in_reply_to_status_id":null,"in_reply_to_status_id_str":null,"in_reply_to_user_id":null,'
    '"in_reply_to_user_id_str":null,"in_reply_to_screen_name":null,"geo":null,"coordinates":null,'
    '"place":null,"contributors":null,"is_quote_status":false,"quote_count":0,"reply_count":0,'
    '"retweet_count":0,"favorite_count":0,"favorited":false,"retweeted":false,"filter_level":"low",'
    '"display_text_range":[0,',
    '"extended_tweet":{"full_text":"',
    '"extended_entities":{"media":[{"id":,"id_str":"","indices":[,],"media_url":"http://pbs.twimg.com/media/",'
    '"media_url_https":"https://pbs.twimg.com/media/","url":"https://t.co/","display_url":"pic.twitter.com/",'
    '"expanded_url":"https://twitter.com/","type":"photo","sizes":{"thumb":{"w":150,"h":150,"resize":"crop"},'
    '"medium":{"w":1200,"h":,"resize":"fit"},"small":{"w":680,"h":,"resize":"fit"},"large":{"w":2048,"h":,'
    '"resize":"fit"}}}]},',
    '"quoted_status_id":,"quoted_status_id_str":"","quoted_status":{',
    '"retweeted_status":{',
    '"source":"<a href=\\"https://mobile.twitter.com\\" rel=\\"nofollow\\">Twitter Web App</a>",',
    '"direct_message_events":[{"type":"message_create","id":"","created_timestamp":"","message_create":'
    '{"target":{"recipient_id":""},"sender_id":"","source_app_id":"","message_data":{"text":"",'
    '"entities":{"hashtags":[],"symbols":[],"user_mentions":[],"urls":[]}}}}],',
    '"typing_indicator_events":[{"created_timestamp":"","sender_id":"","target":{"recipient_id":""}}],',
    '"direct_message_mark_read_events":[{"created_timestamp":"","sender_id":"","target":{"recipient_id":""},'
    '"last_read_event_id":""}],',
    '"favorite_events":[{"id":"","created_at":"","timestamp_ms":,"favorited_status":{',
    '"tweet_delete_events":[{"status":{"id":"","user_id":""},"timestamp_ms":""}],',
    '"user_event":{"revoke":{"date_time":"","target":{"app_id":""},"source":{"user_id":""}}}',
    '{"type":"follow","created_timestamp":"","target":{',
    '"profile_image_url_https":"https://pbs.twimg.com/profile_images/',
    '"user":{"id":,"id_str":"","name":"","screen_name":"","location":"","url":null,"description":"",'
    '"protected":false,"verified":false,"followers_count":,"friends_count":,"listed_count":,'
    '"favourites_count":,"statuses_count":,"created_at":"","default_profile_image":false},',
    '"entities":{"hashtags":[],"urls":[],"user_mentions":[],"symbols":[]},"timestamp_ms":"","lang":"en"}',
    '"created_at":"Mon Jan 01 00:00:00 +0000 2025","id":,"id_str":"","text":"","truncated":false,',
    '"for_user_id":"","tweet_create_events":[{',
    # X API v2 objects (XAA payloads and includes)
    '"withheld":{"copyright":false,"country_codes":[]},"geo":{"place_id":""},'
    '"attachments":{"media_keys":[]},"context_annotations":[{"domain":{"id":"","name":"","description":""},'
    '"entity":{"id":"","name":""}}],"note_tweet":{"text":"","entities":{',
    '"referenced_tweets":[{"type":"replied_to","id":""}],{"type":"quoted","id":""}],'
    '{"type":"retweeted","id":""}],"in_reply_to_user_id":"",',
    '"profile_geo_enrichment":{"potential_locations":[{"geo_entity":{"entity_id":"","display_name":"",'
    '"country_code":"US","region":"","sub_region":"","locality":"","population":,"population_str":"",'
    '"geo_point":{"latitude":,"longitude":}}}]}',
    '"affiliation":{"description":"","url":"https://twitter.com/","user_id":[""],'
    '"badge_url":"https://pbs.twimg.com/profile_images/',
    '"profile_banner_url":"https://pbs.twimg.com/profile_banners/',
    '"public_metrics":{"followers_count":,"followers_count_str":"","following_count":,"following_count_str":"",'
    '"tweet_count":,"tweet_count_str":"","listed_count":,"listed_count_str":"","like_count":,'
    '"like_count_str":"","media_count":,"media_count_str":""},',
    '"users":[{"description":"","pinned_tweet_id":"","url":"","created_at":"","entities":{"url":{"urls":'
    '[{"start":0,"start_str":"0","end":23,"end_str":"23","url":"https://t.co/","expanded_url":"https://",'
    '"display_url":""}]},"description":{"mentions":[{"start":,"start_str":"","end":,"end_str":"",'
    '"username":""}],"hashtags":[{"start":,"start_str":"","end":,"end_str":"","tag":""}]}},',
    '"name":"","verified_type":"blue","id":"","profile_image_url":"https://pbs.twimg.com/profile_images/",'
    '"username":"","protected":false,"is_identity_verified":false,"location":"","verified":true,',
    '"public_metrics":{"retweet_count":0,"retweet_count_str":"0","reply_count":0,"reply_count_str":"0",'
    '"like_count":0,"like_count_str":"0","quote_count":0,"quote_count_str":"0","bookmark_count":0,'
    '"bookmark_count_str":"0","impression_count":0,"impression_count_str":"0"},"lang":"en","created_at":"",'
    '"author_id":"","reply_settings":"everyone","display_text_range":[0,],"paid_partnership":false,"id":"",'
    '"possibly_sensitive":false,"edit_history_tweet_ids":[""],"conversation_id":"","text":"",'
    '"edit_controls":{"edits_remaining":5,"edits_remaining_str":"5","is_edit_eligible":true,"editable_until":""}',
    '"media":[{"media_key":"","type":"photo","url":"https://pbs.twimg.com/media/","width":,"height":,'
    '"preview_image_url":"","alt_text":""}],',
    '"entities":{"urls":[{"start":,"end":,"url":"https://t.co/","expanded_url":"https://","display_url":"",'
    '"status":200,"title":"","unwound_url":""}],"mentions":[{"start":,"end":,"username":"","id":""}],'
    '"hashtags":[{"start":,"end":,"tag":""}],"cashtags":[{"start":,"end":,"tag":""}],'
    '"annotations":[{"start":,"end":,"probability":,"type":"","normalized_text":""}]},',
    '"includes":{"tweets":[{',
    # XAA's envelope
    '"payload":{"id":"","created_at":"","timestamp_ms":"","before":"","after":"",',
    '"event":{"event_uuid":"","filter":{"user_id":""},"event_type":"","tag":"","payload":{',
    # the record's own envelope (models.EventRecord), in every record
    '"context":{},"stored":null,"redacted":false,"redactions":[]}',
    '{"schema_version":2,"event_key":"xaa:post.create:user_id=","source":"xaa","event_type":"post.create",'
    '"source_event_type":"","known_type":true,"user_id":"","subscription":{"for_user_id":null,'
    '"filter":{"user_id":""},"tag":null,"matching_rules":null},"occurred_at":"2026-01-01T00:00:00.000Z",'
    '"received_at":"2026-01-01T00:00:00.000Z","replay":false,"delivery_id":"","event":{',
)
V1 = "".join(_V1_FRAGMENTS).encode("utf-8")

# Adler-32 of the dictionary (what zlib writes in a record's header) -> the dictionary.
DICTIONARIES: dict[int, bytes] = {zlib.adler32(d): d for d in (V1,)}
CURRENT = V1
