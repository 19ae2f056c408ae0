DROP TABLE rights;
