DROP TABLE server_settings;
DROP INDEX users_suspended;
DROP INDEX devices_by_token;
DROP TABLE file_convs;
DROP TABLE files;
