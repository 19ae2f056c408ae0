DROP TABLE delivered;
DROP TABLE conv_users;
DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE blocks;
DROP TABLE relations;
DROP TABLE devices;
DROP TABLE users;
