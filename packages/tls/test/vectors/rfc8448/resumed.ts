// RFC 8448 §4, Resumed 0-RTT Handshake (resumes §3's ticket; TLS_AES_128_GCM_SHA256). See README.md.
import { h } from './hex.ts';

export const clientPrivate = h(`bf f9 11 88 28 38 46 dd 6a 21 34 ef 71
  80 ca 2b 0b 14 fb 10 dc e7 07 b5 09 8c 0d dd c8 13 b2 df`);
export const clientPublic = h(`e4 ff b6 8a c0 5f 8d 96 c9 9d a2 66 98 34
  6c 6b e1 64 82 ba dd da fe 05 1a 66 b4 f1 8d 66 8f 0b`);
/** HKDF-Extract(0, PSK) with the PSK from §3's ticket. */
export const earlySecret = h(`9b 21 88 e9 b2 fc 6d 64 d7 1d c3 29 90 0e 20
  bb 41 91 50 00 f6 78 aa 83 9c bb 79 7c b7 d8 33 2c`);

/** The whole ClientHello record (517 octets), binders included. */
export const clientHelloRecord = h(
  '1603010200010001fc03031bc3ceb6bbe39cff938355b5a50adb6db21b7a6af649d7b4bc419d7876487d95000006130113031302010001cd0000000b0009000006736572766572ff01000100000a00140012001d00170018001901000101010201030104003300260024001d0020e4ffb68ac05f8d96c99da26698346c6be16482badddafe051a66b4f18d668f0b002a0000002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c0002400100150057000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002900dd00b800b22c035d829359ee5ff7af4ec900000000262a6494dc486d2c8a34cb33fa90bf1b0070ad3c498883c9367c09a2be785abc55cd226097a3a982117283f82a03a143efd3ff5dd36d64e861be7fd61d2827db279cce145077d454a3664d4e6da4d29ee03725a6a4dafcd0fc67d2aea70529513e3da2677fa5906c5b3f7d8f92f228bda40dda721470f9fbf297b5aea617646fac5c03272e970727c621a79141ef5f7de6505e5bfbc388e93343694093934ae4d357fad6aacb0021203add4fb2d8fdf822a0ca3cf7678ef5e88dae990141c5924d57bb6fa31b9e5f9d',
);
/** Transcript-Hash(truncated ClientHello) for the binder (§4.2.11.2). */
export const binderHash = h(`63 22 4b 2e 45 73 f2 d3 45 4c a8 4b 9d
  00 9a 04 f6 be 9e 05 71 1a 83 96 47 3a ef a0 1e 92 4a 14`);
/** binder_key = Derive-Secret(early, "res binder", ""). */
export const binderKey = h(`69 fe 13 1a 3b ba d5 d6 3c 64 ee bc c3 0e 39 5b
  9d 81 07 72 6a 13 d0 74 e3 89 db c8 a4 e4 72 56`);
export const binderFinishedKey = h(`55 88 67 3e 72 cb 59 c8 7d 22 0c af fe 94
  f2 de a9 a3 b1 60 9f 7d 50 e9 0a 48 22 7d b9 ed 7e aa`);
export const binder = h(`3a dd 4f b2 d8 fd f8 22 a0 ca 3c f7 67 8e
  f5 e8 8d ae 99 01 41 c5 92 4d 57 bb 6f a3 1b 9e 5f 9d`);

/** Transcript-Hash(ClientHello). */
export const clientHelloHash = h(`08 ad 0f a0 5d 7c 72 33 b1 77 5b a2 ff 9f 4c 5b
  8b 59 27 6b 7f 22 7f 13 a9 76 24 5f 5d 96 09 13`);
export const clientEarlyTrafficSecret = h(`3f bb e6 a6 0d eb 66 c3 0a 32 79 5a ba 0e
  ff 7e aa 10 10 55 86 e7 be 5c 09 67 8d 63 b6 ca ab 62`);
export const earlyExporterMasterSecret = h(`b2 02 68 66 61 09 37 d7 42 3e 5b e9 08 62
  cc f2 4c 0e 60 91 18 6d 34 f8 12 08 9f f5 be 2e f7 df`);
export const earlyKey = h('92 02 05 a5 b7 bf 21 15 e6 fc 5c 29 42 83 4f 54');
export const earlyIv = h('6d 47 5f 09 93 c8 e5 64 61 0d b2 b9');
export const earlyData = h('41 42 43 44 45 46');
export const earlyDataRecord = h(`17 03 03 00 17 ab 1d f4 20 e7 5c 45
  7a 7c c5 d2 84 4f 76 d5 ae e4 b4 ed bf 04 9b e0`);

export const serverPrivate = h(`de 5b 44 76 e7 b4 90 b2 65 2d 33 8a cb
  f2 94 80 66 f2 55 f9 44 0e 23 b9 8f c6 98 35 29 8d c1 07`);
export const serverPublic = h(`12 17 61 ee 42 c3 33 e1 b9 e7 7b 60 dd 57
  c2 05 3c d9 45 12 ab 47 f1 15 e8 6e ff 50 94 2c ea 31`);
export const serverHello = h(`02 00 00 5c 03 03 3c cf d2 de c8 90 22
  27 63 47 2a e8 13 67 77 c9 d7 35 87 77 bb 66 e9 1e a5 12 24 95
  f5 59 ea 2d 00 13 01 00 00 34 00 29 00 02 00 00 00 33 00 24 00
  1d 00 20 12 17 61 ee 42 c3 33 e1 b9 e7 7b 60 dd 57 c2 05 3c d9
  45 12 ab 47 f1 15 e8 6e ff 50 94 2c ea 31 00 2b 00 02 03 04`);

export const derivedForHandshake = h(`5f 17 90 bb d8 2c 5e 7d 37 6e d2 e1 e5 2f
  8e 60 38 c9 34 6d b6 1b 43 be 9a 52 f7 7e f3 99 8e 80`);
export const ecdheSecret = h(`f4 41 94 75 6f f9 ec 9d 25 18 06 35 d6 6e a6 82
  4c 6a b3 bf 17 99 77 be 37 f7 23 57 0e 7c cb 2e`);
export const handshakeSecret = h(`00 5c b1 12 fd 8e b4 cc c6 23 bb 88 a0 7c 64
  b3 ed e1 60 53 63 fc 7d 0d f8 c7 ce 4f f0 fb 4a e6`);
export const helloHash = h(`f7 36 cb 34 fe 25 e7 01 55 1b ee 6f d2 4c 1c c7
  10 2a 7d af 94 05 cb 15 d9 7a af e1 6f 75 7d 03`);
export const clientHandshakeTrafficSecret = h(`2f aa c0 8f 85 1d 35 fe a3 60 4f cb 4d e8
  2d c6 2c 9b 16 4a 70 97 4d 04 62 e2 7f 1a b2 78 70 0f`);
export const serverHandshakeTrafficSecret = h(`fe 92 7a e2 71 31 2e 8b f0 27 5b 58 1c 54
  ee f0 20 45 0d c4 ec ff aa 05 a1 a3 5d 27 51 8e 78 03`);
export const derivedForMaster = h(`e2 f1 60 30 25 1d f0 87 4b a1 9b 9a ba 25
  76 10 bc 6d 53 1c 1d d2 06 df 0c a6 e8 4a e2 a2 67 42`);
export const masterSecret = h(`e2 d3 2d 4e d6 6d d3 78 97 a0 e8 0c 84 10 75
  03 ce 58 bf 8a ad 4c b5 5a 50 02 d7 7e cb 89 0e ce`);
export const serverHandshakeKey = h('27 c6 bd c0 a3 dc ea 39 a4 73 26 d7 9b c9 e4 ee');
export const serverHandshakeIv = h('95 69 ec dd 4d 05 36 70 5e 9e f7 25');

export const encryptedExtensions = h(`08 00 00 28 00 26 00 0a 00 14 00
  12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00 1c
  00 02 40 01 00 00 00 00 00 2a 00 00`);
export const serverFinishedKey = h(`4b b7 4c ae 7a 5d c8 91 46 04 c0 bf be 2f
  0c 06 23 96 88 39 22 be c8 a1 5e 2a 9b 53 2a 5d 39 2c`);
export const serverFinished = h(`14 00 00 20 48 d3 e0 e1 b3 d9 07 c6 ac ff
  14 5e 16 09 03 88 c7 7b 05 c0 50 b6 34 ab 1a 88 bb d0 dd 1a 34
  b2`);
export const serverHandshakeRecord = h(`17 03 03 00 61 dc 48 23 7b 4b 87 9f
  50 d0 d4 d2 62 ea 8b 47 16 eb 40 dd c1 eb 95 7e 11 12 6e 8a 71
  49 c2 d0 12 d3 7a 71 15 95 7e 64 ce 30 00 8b 9e 03 23 f2 c0 5a
  9c 1c 77 b4 f3 78 49 a6 95 ab 25 50 60 a3 3f ee 77 0c a9 5c b8
  48 6b fd 08 43 b8 70 24 86 5c a3 5c c4 1c 4e 51 5c 64 dc b1 36
  9f 98 63 5b c7 a5`);

export const serverFinishedHash = h(`b0 ae ff c4 6a 2c fe 33 11 4e 6f d7 d5 1f 9f 04
  b1 ca 3c 49 7d ab 08 93 4a 77 4a 9d 9a d7 db f3`);
export const clientApplicationTrafficSecret = h(`2a bb f2 b8 e3 81 d2 3d be be 1d d2 a7 d1
  6a 8b f4 84 cb 49 50 d2 3f b7 fb 7f a8 54 70 62 d9 a1`);
export const serverApplicationTrafficSecret = h(`cc 21 f1 bf 8f eb 7d d5 fa 50 5b d9 c4 b4
  68 a9 98 4d 55 4a 99 3d c4 9e 6d 28 55 98 fb 67 26 91`);
export const exporterMasterSecret = h(`3f d9 3d 4f fd dc 98 e6 4b 14 dd 10 7a ed
  f8 ee 4a dd 23 f4 51 0f 58 a4 59 2d 0b 20 1b ee 56 b4`);
export const serverApplicationKey = h('e8 57 c6 90 a3 4c 5a 91 29 d8 33 61 96 84 f9 5e');
export const serverApplicationIv = h('06 85 d6 b5 61 aa b9 ef 10 13 fa f9');

export const endOfEarlyData = h('05 00 00 00');
/** EndOfEarlyData under the early traffic key, the second record in that epoch. */
export const endOfEarlyDataRecord = h(`17 03 03 00 15 ac a6 fc 94 48 41 29
  8d f9 95 93 72 5f 9b f9 75 44 29 b1 2f 09`);
export const clientHandshakeKey = h('b1 53 08 06 f4 ad fe ac 83 f1 41 30 32 bb fa 82');
export const clientHandshakeIv = h('eb 50 c1 6b e7 65 4a bf 99 dd 06 d9');
export const clientFinishedKey = h(`5a ce 39 4c 26 98 0d 58 12 43 f6 27 d1 15
  0a e2 7e 37 fa 52 36 4e 0a 7f 20 ac 68 6d 09 cd 0e 8e`);
export const clientFinished = h(`14 00 00 20 72 30 a9 c9 52 c2 5c d6 13 8f
  c5 e6 62 83 08 c4 1c 53 35 dd 81 b9 f9 6b ce a5 0f d3 2b da 41
  6d`);
export const clientFinishedRecord = h(`17 03 03 00 35 00 f8 b4 67 d1 4c f2
  2a 4b 3f 0b 6a e0 d8 e6 cc 8d 08 e0 db 35 15 ef 5c 2b df 19 22
  ea fb b7 00 09 96 47 16 d8 34 fb 70 c3 d2 a5 6c 5b 1f 5f 6b db
  a6 c3 33 cf`);
export const clientApplicationKey = h('3c f1 22 f3 01 c6 35 8c a7 98 95 53 25 0e fd 72');
export const clientApplicationIv = h('ab 1a ec 26 aa 78 b8 fc 11 76 b9 ac');

export const clientFinishedHash = h(`c3 c1 22 e0 bd 90 7a 4a 3f f6 11 2d 8f d5 3d bf
  89 c7 73 d9 55 2e 8b 6b 9d 56 d3 61 b3 a9 7b f6`);
export const resumptionMasterSecret = h(`5e 95 bd f1 f8 90 05 ea 2e 9a a0 ba 85 e7
  28 e3 c1 9c 5f e0 c6 99 e3 f5 be e5 9f ae bd 0b 54 06`);

export const clientApplicationRecord = h(`17 03 03 00 43 b1 ce bc e2 42 aa 20
  1b e9 ae 5e 1c b2 a9 aa 4b 33 d4 e8 66 af 1e db 06 89 19 23 77
  41 aa 03 1d 7a 74 d4 91 c9 9b 9d 4e 23 2b 74 20 6b c6 fb aa 04
  fe 78 be 44 a9 b4 f5 43 20 a1 7e b7 69 92 af ac 31 03`);
export const serverApplicationRecord = h(`17 03 03 00 43 27 5e 9f 20 ac ff 57
  bc 00 06 57 d3 86 7d f0 39 cc cf 79 04 78 84 cf 75 77 17 46 f7
  40 b5 a8 3f 46 2a 09 54 c3 58 13 93 a2 03 a2 5a 7d d1 41 41 ef
  1a 37 90 0c db 62 ff 62 de e1 ba 39 ab 25 90 cb f1 94`);
export const clientAlertRecord = h(`17 03 03 00 13 0f ac ce 32 46 bd fc
  63 69 83 8d 6a 82 ae 6d e5 d4 22 dc`);
export const serverAlertRecord = h(`17 03 03 00 13 5b 18 af 44 4e 8e 1e
  ec 71 58 fb 62 d8 f2 57 7d 37 ba 5d`);
