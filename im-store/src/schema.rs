//! Diesel table definitions, shared by both backends (the migrations under
//! `migrations/sqlite` and `migrations/postgres` create the same columns).

diesel::table! {
    users (name) {
        name -> Text,
        password_hash -> Text,
        suspended -> Bool,
        created_at -> BigInt,
        last_seen -> Nullable<BigInt>,
    }
}

diesel::table! {
    devices (user_name, device) {
        user_name -> Text,
        device -> Text,
        token_hash -> Nullable<Text>,
        token_issued_at -> BigInt,
        last_login -> BigInt,
    }
}

diesel::table! {
    relations (user_a, user_b) {
        user_a -> Text,
        user_b -> Text,
        requested_by -> Nullable<Text>,
    }
}

diesel::table! {
    blocks (by_user, target) {
        by_user -> Text,
        target -> Text,
    }
}

diesel::table! {
    conversations (id) {
        id -> BigInt,
        name -> Text,
        user_a -> Nullable<Text>,
        user_b -> Nullable<Text>,
        last_seq -> BigInt,
        last_ts -> BigInt,
        activity -> BigInt,
    }
}

diesel::table! {
    messages (conv_id, seq) {
        conv_id -> BigInt,
        seq -> BigInt,
        sender -> Text,
        body -> Text,
        ts -> BigInt,
        client_id -> Nullable<Text>,
        attachment -> Nullable<Text>,
    }
}

diesel::table! {
    client_ids (conv_id, sender, client_id) {
        conv_id -> BigInt,
        sender -> Text,
        client_id -> Text,
        seq -> BigInt,
        ts -> BigInt,
    }
}

diesel::table! {
    conv_users (conv_id, user_name) {
        conv_id -> BigInt,
        user_name -> Text,
        member -> Bool,
        read_seq -> BigInt,
        joined_seq -> BigInt,
    }
}

diesel::table! {
    delivered (user_name, device, conv_id) {
        user_name -> Text,
        device -> Text,
        conv_id -> BigInt,
        seq -> BigInt,
    }
}

diesel::table! {
    rooms (name) {
        name -> Text,
        topic -> Text,
        public -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    room_members (pos) {
        pos -> BigInt,
        room -> Text,
        user_name -> Text,
        owner -> Bool,
        joined_at -> BigInt,
    }
}

diesel::table! {
    room_bans (room, user_name) {
        room -> Text,
        user_name -> Text,
    }
}

diesel::table! {
    room_invites (user_name, room) {
        user_name -> Text,
        room -> Text,
        from_user -> Text,
    }
}

diesel::table! {
    files (id) {
        id -> Text,
        uploader -> Text,
        name -> Text,
        mime -> Text,
        size -> BigInt,
        received -> BigInt,
        sha256 -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    file_convs (file_id, conv) {
        file_id -> Text,
        conv -> Text,
    }
}

diesel::table! {
    server_settings (key) {
        key -> Text,
        value -> Binary,
    }
}

diesel::joinable!(messages -> conversations (conv_id));
diesel::joinable!(client_ids -> conversations (conv_id));
diesel::joinable!(conv_users -> conversations (conv_id));
diesel::joinable!(delivered -> conversations (conv_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    devices,
    relations,
    blocks,
    conversations,
    messages,
    client_ids,
    conv_users,
    delivered,
    rooms,
    room_members,
    room_bans,
    room_invites,
    files,
    file_convs,
    server_settings,
);
